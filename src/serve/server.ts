/**
 * `imgjob serve` put together: the database, one downloader (behind the
 * address guard), one JobService, the HTTP API — and a close() that takes
 * them down in the order that loses nothing.
 */
import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { isIP, type LookupFunction } from 'node:net';
import { hostname } from 'node:os';

import type { Database } from 'better-sqlite3';

import { createDownloader, type Downloader, type DownloaderInput } from '../download/downloader.js';
import { createStoreDeps, resultOptionsOf, type StoreMaster } from '../engine/job-setup.js';
import type { Sleep } from '../utils/sleep.js';
import { resolveRunOptions } from '../engine/run-options.js';
import type { ResolvedRunOptions, RunOptions } from '../types.js';
import {
  createAddressGuard,
  guardedConnector,
  refusalMessage,
  type AddressGuard,
  type AddressRefusedError,
} from '../download/address-guard.js';
import { DownloadError } from '../utils/errors.js';
import { canParseUrl } from '../utils/can-parse-url.js';
import { createApi, type MetricsText } from './api.js';
import { createDashboard, type Dashboard, type DashboardOptions } from './dashboard/index.js';
import type { BatchWriterOptions } from './batch-writer.js';
import { openDatabase } from './db.js';
import { createHttpServer, listen, type HttpLimits } from './http.js';
import { createEventLog, type EventLog, type LogFormat } from '../log/event-log.js';
import { createRequestGuard } from './request-guard.js';
import { SERVE_DEFAULTS } from './defaults.js';
import { JobService, type JobLimits } from './job-service.js';
import type { QueueRunner, QueueRunnerOptions } from '../queue/coordinator.js';
import type { WorkerWatch } from '../queue/worker-watch.js';
import type { QueueStatsReader } from '../queue/queue-stats.js';
import type { RedisTarget } from '../queue/redis-url.js';
import { metricsAnswer } from '../metrics/server.js';
import { Tallies } from '../metrics/tallies.js';
import type { Registry } from 'prom-client';

export type ServeConfig = {
  /** @default '127.0.0.1' */
  readonly host?: string | undefined;
  /** `0` picks a free port. @default 8080 */
  readonly port?: number | undefined;
  /** The SQLite file; created when missing. */
  readonly dbPath: string;
  /** The run options every job gets; what is left out takes its RUN_DEFAULTS value. */
  readonly options?: Omit<RunOptions, 'failFast'> | undefined;
  /** Known store ids, and where they came from (for messages). */
  readonly storeMaster?: StoreMaster | undefined;
  /**
   * Let image URLs reach loopback, private, link-local and metadata addresses.
   * @default false
   */
  readonly allowPrivate?: boolean | undefined;
  /**
   * Largest request body, in bytes.
   * @default 16 MiB
   */
  readonly maxBodyBytes?: number | undefined;
  /**
   * Most stores and images of one submitted job (413 beyond).
   * @default 100k stores, 1M images
   */
  readonly limits?: Partial<JobLimits> | undefined;
  /** Replaces the address policy (tests: let exactly their own server through). */
  readonly addressGuard?: AddressGuard | undefined;
  /** Replaces DNS for the guarded connections (tests). */
  readonly lookup?: LookupFunction | undefined;
  /** Replaces the GPU sleep (tests, benchmarks). */
  readonly sleep?: Sleep | undefined;
  readonly writer?: Omit<BatchWriterOptions, 'onError'> | undefined;
  /** Timeouts and the connection cap of the HTTP server. @default SERVE_DEFAULTS.http */
  readonly http?: Partial<HttpLimits> | undefined;
  /** More names the `Host` header may carry (`--allowed-host`); see request-guard.ts. */
  readonly allowedHosts?: readonly string[] | undefined;
  /** Cross-origin web pages allowed to call the API (`--allow-origin`). */
  readonly allowedOrigins?: readonly string[] | undefined;
  /** Dashboard timings (tests) and the queue's workers, for its Workers panel. */
  readonly dashboard?: Omit<DashboardOptions, 'db' | 'jobs'> | undefined;
  /**
   * Where the server's log lines go, one finished line per call (stderr in
   * the CLI): jobs submitted and finished, refused addresses, failures
   * nobody waits for.
   */
  readonly log?: ((line: string) => void) | undefined;
  /** @default 'text' */
  readonly logFormat?: LogFormat | undefined;
  /** Redis URL: the stores run on `imgjob worker` processes (serve --queue). */
  readonly queue?: string | undefined;
  /**
   * With `queue`: how long the keys of a job left unfinished at shutdown stay
   * in Redis. @default DEFAULT_QUEUE_RETENTION_MS (7 days)
   */
  readonly queueRetentionMs?: number | undefined;
};

/** The config past `startServer`'s entry: every run option holds its value or default. */
type ResolvedConfig = ServeConfig & { readonly options: ResolvedRunOptions };

export type RunningServer = {
  /** `http://127.0.0.1:8080` */
  readonly url: string;
  /** Jobs taken up again from the database. */
  readonly resumed: readonly number[];
  /** Jobs that could not be resumed, or resumed under other options. */
  readonly warnings: readonly string[];
  readonly service: JobService;
  /** The dashboard at `/` and its event streams. */
  readonly dashboard: Dashboard;
  /**
   * Graceful stop: no new connections, no new jobs or images, the running
   * stores stopped, every change written, the database closed. Jobs left
   * ongoing resume at the next start. Calling it again is harmless.
   */
  close(): Promise<void>;
};

/**
 * Opens the database, resumes its unfinished jobs and starts listening.
 * @throws {InputError} `E_USAGE` when the database or the address cannot be used.
 */
export async function startServer(given: ServeConfig): Promise<RunningServer> {
  const config: ResolvedConfig = { ...given, options: resolveRunOptions(given.options) };
  const log = createEventLog({
    format: config.logFormat ?? 'text',
    sink: config.log ?? (() => undefined),
  });
  const onError = (message: string, error: unknown): void => {
    log.error(message, error);
  };
  // Checked before the database opens: an unusable queue is bad input (exit 2).
  // The queue's packages load only with --queue.
  const [coordinator, watcher] = config.queue
    ? await Promise.all([import('../queue/coordinator.js'), import('../queue/worker-watch.js')])
    : [];
  const queueTarget = config.queue ? await coordinator?.checkQueue(config.queue) : undefined;
  const db = openDatabase(config.dbPath);
  const queueOptions = queueTarget && queueOptionsOf(config);
  const queue: QueueRunner | undefined =
    queueTarget &&
    queueOptions &&
    coordinator?.openQueueRunner(queueTarget, {
      ...queueOptions,
      // A result leaves Redis only once the database has it.
      durable: (): Promise<void> => service.written(),
      onNotice: (line) => {
        log.write('info', 'queue', line);
      },
    });
  const guard =
    config.addressGuard ??
    (config.allowPrivate ? undefined : createAddressGuard({ allowPrivate: false }));
  const downloader = createDownloader(downloaderOptions(config, guard, log));
  const { options } = config;
  // Always counted (a few increments per image); prom-client loads at the first scrape.
  const tallies = new Tallies();
  const service = new JobService(db, {
    concurrency: options.concurrency,
    resultOptions: resultOptionsOf(options, config.storeMaster?.ids),
    deps: createStoreDeps({
      fetchImage: (url, signal) => refusedAtOnce(guard, url) ?? downloader.fetchImage(url, signal),
      gpuDelay: options.gpuDelay,
      seed: options.seed,
      storeMaster: config.storeMaster,
      sleep: config.sleep,
      observer: tallies,
    }),
    writer: { ...config.writer, onSave: tallies.saved },
    log,
    limits: {
      maxStores: config.limits?.maxStores ?? SERVE_DEFAULTS.maxStores,
      maxImages: config.limits?.maxImages ?? SERVE_DEFAULTS.maxImages,
    },
    runner: queue,
  });
  let closing: Promise<void> | undefined;
  // The dashboard's Workers panel reads a snapshot refreshed in the background.
  const workerWatch: WorkerWatch | undefined =
    queueTarget && watcher?.watchWorkers(queueTarget, { namespace: queueOptions?.namespace });
  const maxConnections = config.http?.maxConnections ?? SERVE_DEFAULTS.http.maxConnections;
  const dashboard = createDashboard({
    db,
    jobs: service,
    ...(workerWatch ? { workers: () => workerWatch.list() } : {}),
    ...config.dashboard,
    // Streams hold their connections: half of them at most, the rest stay the API's.
    maxStreams: Math.max(
      1,
      Math.min(
        config.dashboard?.maxStreams ?? SERVE_DEFAULTS.streams.max,
        Math.floor(maxConnections / 2),
      ),
    ),
  });
  const metrics = serveMetrics(tallies, service, queueTarget);
  const http = createHttpServer(createApi(service, dashboard.route, metrics.text), {
    maxBodyBytes: config.maxBodyBytes ?? SERVE_DEFAULTS.maxBodyBytes,
    onError,
    closing: () => closing !== undefined,
    limits: config.http,
    guard: createRequestGuard({
      host: config.host ?? SERVE_DEFAULTS.host,
      allowedHosts: config.allowedHosts,
      allowedOrigins: config.allowedOrigins,
    }),
  });
  let url: string;
  try {
    url = await listen(
      http,
      config.host ?? SERVE_DEFAULTS.host,
      config.port ?? SERVE_DEFAULTS.port,
    );
  } catch (error) {
    dashboard.close();
    workerWatch?.close();
    await shutDown(service, downloader, db);
    await queue?.close();
    await metrics.close();
    throw error;
  }
  // After listen, in the same tick: no request is answered before the jobs are back.
  const { resumed, warnings } = service.resume();

  return {
    url,
    resumed,
    warnings,
    service,
    dashboard,
    close: () =>
      (closing ??= (async () => {
        dashboard.close();
        workerWatch?.close();
        const closed = new Promise<void>((resolve) => {
          http.close(() => {
            resolve();
          });
        });
        const grace = setTimeout(() => {
          http.closeAllConnections();
        }, SERVE_DEFAULTS.closeGraceMs);
        await service.close();
        // Answers in progress may still read the database: let them end first.
        await closed;
        clearTimeout(grace);
        await shutDown(service, downloader, db);
        await queue?.close();
        await metrics.close();
      })()),
  };
}

/**
 * `GET /metrics`: the registry is made at the first scrape (prom-client
 * loads then, not at every start), with the queue's gauges under --queue.
 */
function serveMetrics(
  tallies: Tallies,
  service: JobService,
  queueTarget: RedisTarget | undefined,
): { readonly text: MetricsText; close(): Promise<void> } {
  let registry: Promise<Registry> | undefined;
  let queueStats: QueueStatsReader | undefined;
  const open = async (): Promise<Registry> => {
    const { createRegistry } = await import('../metrics/exposition.js');
    if (queueTarget) {
      queueStats = (await import('../queue/queue-stats.js')).openQueueStats(queueTarget);
    }
    const stats = queueStats;
    return createRegistry(tallies, {
      stores: () => service.storeCounts(),
      jobs: () => service.jobCounts(),
      queue: stats && (() => stats.read()),
    });
  };
  return {
    text: async () => metricsAnswer(await (registry ??= open())),
    close: async () => {
      await queueStats?.close();
    },
  };
}

async function shutDown(service: JobService, downloader: Downloader, db: Database): Promise<void> {
  await service.close();
  await downloader.close();
  db.close();
}

function downloaderOptions(
  config: ResolvedConfig,
  guard: AddressGuard | undefined,
  log: EventLog,
): DownloaderInput {
  const { options } = config;
  if (guard === undefined) return options;
  // undici's own connect timeout gets the attempt's deadline, as download.ts sets it.
  // The client's text leaves out what a name resolved to; the log keeps it,
  // once per name (a job may hold 100k URLs on one name). Not IP literals:
  // the client's text says all there is to say.
  const logged = new Set<string>();
  const onRefused = (refused: AddressRefusedError): void => {
    if (refused.url === refused.address || logged.has(refused.url)) return;
    if (logged.size >= 1000) logged.clear();
    logged.add(refused.url);
    log.write('warn', 'address_refused', `refused a connection: ${refused.detail}`, {
      host: refused.url,
      address: refused.address,
    });
  };
  const connect = guardedConnector(guard, {
    lookup: config.lookup,
    connect: { timeout: options.timeoutMs },
    onRefused,
  });
  return { ...options, connect };
}

/**
 * An image whose URL names an address the guard refuses (an IP literal: no
 * DNS needed to judge it) fails at once, with the error the connection would
 * have got, and no request is made: a job of 100k such stores costs no
 * connection attempts, so it ends in seconds.
 */
function refusedAtOnce(guard: AddressGuard | undefined, url: string): Promise<never> | undefined {
  if (guard === undefined || !canParseUrl(url)) return undefined;
  const host = new URL(url).hostname;
  const address = host.startsWith('[') ? host.slice(1, -1) : host;
  const family = isIP(address);
  const reason = family === 0 ? undefined : guard(address, family);
  if (reason === undefined) return undefined;
  // An expected failure, not a bug: no stack is taken (it is most of the cost).
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return Promise.reject(
      new DownloadError('E_ADDRESS_REFUSED', refusalMessage(address, address, reason), {
        url,
        transient: false,
      }),
    );
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * The jobs of this database go to the workers with the address guard on
 * (unless --allow-private), under a namespace of this database file: job ids
 * are per database, and servers on other databases may share the Redis.
 */
function queueOptionsOf(config: ResolvedConfig): QueueRunnerOptions {
  const { ino, birthtimeMs } = statSync(config.dbPath);
  const namespace = createHash('sha256')
    .update(`${hostname()}\0${realpathSync(config.dbPath)}\0${ino}\0${birthtimeMs}`)
    .digest('hex')
    .slice(0, 16);
  return {
    ...config.options,
    failFast: false,
    storeMaster: config.storeMaster,
    guardAddresses: !config.allowPrivate,
    namespace: `serve-${namespace}`,
    retentionMs: config.queueRetentionMs,
  };
}
