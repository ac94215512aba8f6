/**
 * The downloader: downloads an image and measures it, on the calling thread
 * (`threads: 1`) or on a pool of download threads. Either way it is one
 * `fetchImage(url, signal)` and one `close()`, and every limit (`perHost`,
 * `timeoutMs`, `retries`, `maxBytes`, `headerOnly`, the connector) means the
 * same over the whole process.
 *
 * Nothing heavy is loaded here: undici and the pool come on the first
 * download, so a command that downloads nothing does not pay for them.
 */
import type { buildConnector } from 'undici';

import type { DownloadOptions, Measurement } from '../types.js';

export type DownloaderOptions = DownloadOptions & {
  /** Most connections open to one origin at once, over every thread. */
  readonly perHost: number;
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
  readonly maxRedirects?: number;
  /**
   * Backoff base: retry n waits a random time up to `retryBaseMs * 2^(n-1)`.
   * @default 250
   */
  readonly retryBaseMs?: number;
  /**
   * Cap of one backoff wait, a server's Retry-After included.
   * @default 30_000
   */
  readonly retryMaxMs?: number;
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
};

export type Downloader = {
  /**
   * Downloads `url` and reads its dimensions. Rejects with a DownloadError
   * (its `url` is this one), or an AbortedError when `signal` fires.
   */
  fetchImage(url: string, signal?: AbortSignal): Promise<Measurement>;
  /** Closes the connection pool (and the threads); abort downloads still running first. */
  close(): Promise<void>;
};

/**
 * How a download thread builds a connector: `module` exports a function
 * `exportName(options)` that returns it; `options` must survive
 * `structuredClone`. A connector carries its recipe under this symbol.
 */
export type ConnectorRecipe = {
  readonly module: string;
  readonly exportName: string;
  readonly options: unknown;
};

export const CONNECTOR_RECIPE = Symbol.for('imgjob.connectorRecipe');

export function createDownloader(options: DownloaderOptions): Downloader {
  expectInteger('timeoutMs', options.timeoutMs, 1);
  expectInteger('maxBytes', options.maxBytes, 0);
  expectInteger('retries', options.retries, 0);
  expectInteger('perHost', options.perHost, 1);
  expectInteger('maxRedirects', options.maxRedirects ?? 5, 0);
  const threads = options.threads ?? 1;
  expectInteger('threads', threads, 1);
  expectInteger('workerMinBytes', options.workerMinBytes ?? 0, 0);
  const recipe = recipeOf(options.connect);
  const pooled = threads > 1 && (options.connect === undefined || recipe !== undefined);
  let loaded: Promise<Downloader> | undefined;
  const load = (): Promise<Downloader> =>
    (loaded ??= pooled
      ? import('./threads/pool.js').then(({ createPool }) =>
          createPool({ ...options, threads }, recipe),
        )
      : import('./local.js').then(({ createLocalDownloader }) => createLocalDownloader(options)));
  return {
    async fetchImage(url, signal) {
      return (await load()).fetchImage(url, signal);
    },
    async close() {
      if (loaded) await (await loaded).close();
    },
  };
}

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
