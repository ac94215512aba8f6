/**
 * The downloader: downloads an image and measures it, on the calling thread
 * (`threads: 1`) or on a pool of download threads. Either way it is one
 * `fetchImage(url, signal)` and one `close()`, and every limit (`perHost`,
 * `timeoutMs`, `retries`, `maxBytes`, `headerOnly`, the connector, the proxy)
 * means the same over the whole process.
 *
 * The threads run single attempts; the retries, each host's turns
 * (hosts.ts) and the DNS cache stay here, on the main thread, so a host
 * paused by a 429 is paused for every thread.
 *
 * Nothing heavy is loaded here: undici and the pool come on the first
 * download, so a command that downloads nothing does not pay for them.
 */
import type { buildConnector } from 'undici';

import { DownloadError } from '../utils/errors.js';
import type { DownloadOptions, Measurement, SlowDownload } from '../types.js';
import { withDefaults } from '../utils/with-defaults.js';
import type { ConnectorRecipe } from './address-guard.js';
import type { InFlight } from './attempt.js';
import { DOWNLOAD_DEFAULTS } from './defaults.js';
import { DnsCache, sharedDnsCache, type Resolve } from './dns-cache.js';
import { abortedError, badUrl } from './errors.js';
import { HostBoard, type HostCounts, type PausedHosts } from './hosts.js';
import type { Measured } from './measure.js';
import { parseTarget, type Target } from './response.js';
import { withRetries, type RetryPolicy } from './retry.js';
import { expectWorkerFile } from './threads/worker-file.js';

/** What `createDownloader` takes; what is left out takes its DOWNLOAD_DEFAULTS value. */
export type DownloaderInput = DownloadOptions & {
  /**
   * Download threads. `1` downloads on the calling thread; more starts a
   * pool of worker threads, one at a time as the work needs them, at most
   * one per `perHost` connection.
   * @default 1
   */
  readonly threads?: number | undefined;
  /**
   * With `threads` above 1: worker threads start only once the images
   * downloaded so far average this many bytes or more; below it the work
   * per image is the request, not the body, and the main thread keeps it.
   * @default 32 KiB
   */
  readonly workerMinBytes?: number | undefined;
  /**
   * Most redirect hops followed.
   * @default 5
   */
  readonly maxRedirects?: number | undefined;
  /**
   * Cap of one backoff wait, a server's Retry-After included.
   * @default 30_000
   */
  readonly retryMaxMs?: number | undefined;
  /**
   * Opens the connections instead of undici's own connector (`serve` passes
   * one that refuses private addresses). A DownloadError it fails a
   * connection with is final: the image fails with it, without retries.
   * A function cannot cross to another thread: the pool builds the same
   * connector in each thread from its `CONNECTOR_RECIPE`, and a connector
   * without one keeps the downloads on the calling thread.
   * @default undici's connector, with `timeoutMs` as its connect timeout
   */
  readonly connect?: buildConnector.connector | undefined;
  /**
   * Looks names up for this downloader's own DNS cache (tests count the
   * lookups). Threads ask the main thread's cache.
   * @default the process's DNS cache, over c-ares
   */
  readonly resolve?: Resolve | undefined;
};

/** The options past `createDownloader`'s entry: every default filled in. */
export type DownloaderOptions = DownloaderInput & typeof DOWNLOAD_DEFAULTS;

/** What a download thread runs with: the options that cross to it. */
export type ThreadOptions = Omit<DownloaderOptions, 'connect' | 'threads' | 'resolve'>;

/** Single download attempts, on one thread or a pool of them. */
export type AttemptRunner = {
  /** One attempt, no retry: the measurement, or the DownloadError it failed with. */
  run(url: string, target: Target, signal?: AbortSignal): Promise<Measured>;
  /** The attempts in flight. */
  inFlight(): InFlight[];
  /** Attempts to one host it can run at once, each on a connection of its own. */
  capacity(): number;
  close(): Promise<void>;
};

/** The network as a downloader sees it now. */
export type NetworkView = {
  /** Hosts paused by a Retry-After, by the status that paused them. */
  readonly paused: PausedHosts;
  /** Up to `slowest` attempts in flight for 5 s or more, slowest first. */
  readonly slowest: readonly SlowDownload[];
  /** The 20 hosts with the most requests, with their 429/503 answers. */
  readonly hosts: readonly HostCounts[];
  /** Names looked up in DNS (past the cache). */
  readonly dnsLookups: number;
};

export type Downloader = {
  /**
   * Downloads `url` and reads its dimensions. Rejects with a DownloadError
   * (its `url` is this one), or an AbortedError when `signal` fires.
   */
  fetchImage(url: string, signal?: AbortSignal): Promise<Measurement>;
  /** Hosts, slow downloads and DNS, now. */
  network(slowest?: number): NetworkView;
  /** Closes the connection pool (and the threads); abort downloads still running first. */
  close(): Promise<void>;
};

/**
 * How a download thread builds the same connector: the one connector that
 * crosses threads is the address guard's (address-guard.ts), and it carries
 * its recipe under this symbol.
 */
export type { ConnectorRecipe };

export const CONNECTOR_RECIPE = Symbol.for('imgjob.connectorRecipe');

export function createDownloader(input: DownloaderInput): Downloader {
  const options: DownloaderOptions = withDefaults(input, DOWNLOAD_DEFAULTS);
  expectInteger('timeoutMs', options.timeoutMs, 1);
  expectInteger('maxBytes', options.maxBytes, 0);
  expectInteger('retries', options.retries, 0);
  expectInteger('perHost', options.perHost, 1);
  expectInteger('maxRedirects', options.maxRedirects, 0);
  const { threads } = options;
  expectInteger('threads', threads, 1);
  if (options.workerMinBytes !== undefined)
    expectInteger('workerMinBytes', options.workerMinBytes, 0);
  const recipe = recipeOf(options.connect);
  const pooled = threads > 1 && (options.connect === undefined || recipe !== undefined);
  // Before any download: a package without the threads' module is broken, and says so at once.
  if (pooled) expectWorkerFile();
  const dns = options.resolve ? new DnsCache({ resolve: options.resolve }) : sharedDnsCache();
  const { retryMaxMs } = options;
  const hosts = new HostBoard({
    perHost: options.perHost,
    maxPauseMs: retryMaxMs,
    capacity: () => loadedRunner?.capacity() ?? options.perHost,
  });
  const policy: RetryPolicy = {
    retries: options.retries,
    baseMs: options.retryBaseMs,
    maxMs: retryMaxMs,
    hostPaced: true,
  };
  let loaded: Promise<AttemptRunner> | undefined;
  let loadedRunner: AttemptRunner | undefined;
  const load = (): Promise<AttemptRunner> =>
    (loaded ??= (
      pooled
        ? import('./threads/pool.js').then(({ createPool }) =>
            createPool({ ...options, threads }, recipe, dns),
          )
        : import('./local.js').then(({ createLocalAttempts }) =>
            createLocalAttempts(options, options.connect, dns.lookup),
          )
    ).then((runner) => (loadedRunner = runner)));

  /** One attempt in its host's turn; the answer goes to the host's state. */
  async function attempt(
    runner: AttemptRunner,
    url: string,
    target: Target,
    retry: boolean,
    signal: AbortSignal | undefined,
  ): Promise<Measured> {
    let release: () => void;
    try {
      release = await hosts.turn(target.host, signal, retry);
    } catch (error) {
      throw signal?.aborted ? abortedError(signal) : error;
    }
    try {
      const measured = await runner.run(url, target, signal);
      hosts.record(target.host, { ok: true });
      return measured;
    } catch (error) {
      if (error instanceof DownloadError) {
        hosts.record(target.host, {
          ok: false,
          status: error.status,
          retryAfterMs: error.retryAfterMs,
        });
      }
      throw error;
    } finally {
      release();
    }
  }

  return {
    async fetchImage(url, signal) {
      if (signal?.aborted) throw abortedError(signal);
      const target = parseTarget(url);
      if (!target) throw badUrl(url, 'not an http(s) URL');
      const runner = await load();
      const { value, attempts, retried } = await withRetries(
        (attempts) => attempt(runner, url, target, attempts > 1, signal),
        policy,
        signal,
      );
      return retried ? { ...value, attempts, retried } : { ...value, attempts };
    },
    network(slowest = 3) {
      return {
        paused: hosts.paused(),
        slowest: slowestOf(loadedRunner?.inFlight() ?? [], slowest),
        hosts: hosts.summary(),
        dnsLookups: dns.lookups,
      };
    },
    async close() {
      hosts.close();
      if (loaded) await (await loaded).close();
    },
  };
}

/** Attempts in flight for `SLOW_AFTER_MS` or more, slowest first. */
function slowestOf(inFlight: readonly InFlight[], count: number): SlowDownload[] {
  const now = Date.now();
  return inFlight
    .filter((attempt) => now - attempt.startedAt >= SLOW_AFTER_MS)
    .sort((a, b) => a.startedAt - b.startedAt)
    .slice(0, count)
    .map((attempt) => ({
      url: attempt.url,
      seconds: Math.floor((now - attempt.startedAt) / 1000),
      bytes: attempt.bytes,
    }));
}

/** From when a download in flight is named as slow. */
export const SLOW_AFTER_MS = 5_000;

export function recipeOf(
  connect: buildConnector.connector | undefined,
): ConnectorRecipe | undefined {
  const recipe: unknown =
    connect && (connect as { [CONNECTOR_RECIPE]?: unknown })[CONNECTOR_RECIPE];
  return recipe === undefined ? undefined : (recipe as ConnectorRecipe);
}

function expectInteger(name: string, value: number, min: number): void {
  if (Number.isSafeInteger(value) && value >= min) return;
  throw new TypeError(`Expected \`${name}\` to be an integer from ${min} and up, got \`${value}\``);
}
