import { Worker, WaitingError, type Job } from 'bullmq';

import { createAddressGuard, guardedConnector } from '../download/address-guard.js';
import {
  createDownloader,
  type Downloader,
  type DownloaderOptions,
} from '../download/downloader.js';
import { createStoreDeps } from '../engine/job-setup.js';
import { runStore, type StoreDeps } from '../engine/store.js';
import type { Sleep } from '../utils/sleep.js';
import type { ImageResult } from '../types.js';
import { connect, preflight } from './connection.js';
import {
  PREFIX,
  PROTOCOL_VERSION,
  QUEUE_NAME,
  type ProcessingSettings,
  type ResultEntry,
  type StoreJobData,
} from './protocol.js';
import type { RedisTarget } from './redis-url.js';
import { watchLockLoss } from './lock-loss.js';
import { Reporter, type ReportOutcome } from './report.js';
import { newWorkerId, Presence } from './presence.js';
import { RedisWeather, retrying } from './weather.js';
import type { EventLog } from '../log/event-log.js';
import { logStoreEnd } from '../log/job-events.js';
import type { Tallies } from '../metrics/tallies.js';

/** BullMQ's lock and stall timing; short values let tests see a stall quickly. */
export type LockTiming = {
  /** A store's lock lives this long unless renewed (every half of it). @default 30_000 */
  readonly lockDurationMs: number;
  /** How often workers look for stores whose lock expired. @default 30_000 */
  readonly stalledIntervalMs: number;
};

/**
 * A killed worker's store is taken up within lock + stalled interval after
 * its last renewal: 25 s + 5 s at most. Renewing every 5 s lets a lock ride
 * out about 20 s of Redis weather (a failover, OOM) without moving.
 */
export const DEFAULT_LOCK_TIMING: LockTiming = {
  lockDurationMs: 25_000,
  stalledIntervalMs: 5_000,
};
/** How often a lock is renewed, at most (BullMQ's default is half the lock). */
const LOCK_RENEW_MS = 5_000;
/** How often a running store looks whether its coordinator called it off (fail-fast, cancel). */
const CALL_OFF_POLL_MS = 500;
/**
 * Results a store keeps while Redis does not take them; past this it stops
 * and is handed back once they are reported.
 */
const MAX_UNREPORTED = 64;
/** After a failed fetch of a store, BullMQ waits this long before the next (its default: 15 s). */
const RUN_RETRY_DELAY_MS = 1_000;

export type WorkerOptions = {
  readonly target: RedisTarget;
  /** Stores this worker runs at once (its GPU slots). */
  readonly concurrency: number;
  /** Connections per image host. */
  readonly perHost: number;
  /** This machine's proxy and speed limit (see DownloaderOptions). @default none */
  readonly network?: Pick<DownloaderOptions, 'proxy' | 'speedLimit'> | undefined;
  /** Threads for downloads and measuring (see DownloaderOptions.threads). @default 1 */
  readonly threads?: number | undefined;
  readonly timing?: LockTiming | undefined;
  /** One event per store it starts, finishes or hands back (see log/job-events.ts). */
  readonly log: EventLog;
  /** Replaces the GPU sleep (benchmarks). */
  readonly sleep?: Sleep | undefined;
  /** How often it renews its presence (what dashboards list). @default HEARTBEAT_MS */
  readonly heartbeatMs?: number | undefined;
  /** Counts downloads, results and running stores for `--metrics-port`. */
  readonly metrics?: Tallies | undefined;
};

/**
 * `imgjob worker`: takes stores off the shared queue and runs each through
 * the same store pipeline as a single machine, reporting every result through
 * the fenced report script. Resolves once `signal` fired and every store it
 * held was handed back (or finished): nothing it took is lost.
 */
export async function runWorker(options: WorkerOptions, signal: AbortSignal): Promise<void> {
  await preflight(options.target);
  const timing = options.timing ?? DEFAULT_LOCK_TIMING;
  const weather = new RedisWeather(options.target, (line, bad) => {
    options.log.event('redis_state', line, { redis: options.target.safe }, bad ? 'warn' : 'notice');
  });
  const commands = connect(options.target, 'imgjob-worker', weather);
  const id = newWorkerId();
  const presence = new Presence(commands, {
    id,
    slots: options.concurrency,
    heartbeatMs: options.heartbeatMs,
  });
  presence.start();
  const engines = new EngineCache(options);
  const running = new Map<string, AbortController>();
  const processor = async (job: Job<StoreJobData>, token?: string): Promise<void> => {
    if (token === undefined || job.id === undefined) throw new Error('BullMQ gave no lock token');
    const run = new AbortController();
    running.set(job.id, run);
    if (options.metrics) options.metrics.storesRunning = running.size;
    if (signal.aborted) run.abort();
    let interrupted: boolean;
    try {
      const context = {
        reporter,
        engines,
        presence,
        log: options.log,
        describe: (error: unknown) => weather.redact(error),
      };
      interrupted = await runOneStore(job, job.id, token, context, run.signal);
    } finally {
      running.delete(job.id);
      if (options.metrics) options.metrics.storesRunning = running.size;
      presence.remove(job.id);
    }
    if (interrupted) {
      // Handed back at once, not failed: the next worker continues after
      // the last reported image. A lock lost meanwhile has moved it already.
      const back = await retrying(weather, () => job.moveToWait(token)).then(
        () => true,
        () => false,
      );
      if (back) {
        options.log.event(
          'store_handed_back',
          `handed back  ${describeStore(job.data)}`,
          storeFields(job.data),
        );
      }
      throw new WaitingError();
    }
  };
  // BullMQ leaves a connection it is given open on close(): it is ours to end.
  const bullConnection = connect(options.target, 'imgjob-worker-bullmq', weather);
  const worker = new Worker<StoreJobData>(QUEUE_NAME, processor, {
    connection: bullConnection,
    prefix: PREFIX,
    // Names its Redis client `imgjob:<queue>:w:<id>`: CLIENT LIST tells who is who.
    name: id,
    concurrency: options.concurrency,
    lockDuration: timing.lockDurationMs,
    lockRenewTime: Math.min(LOCK_RENEW_MS, timing.lockDurationMs / 2),
    stalledInterval: timing.stalledIntervalMs,
    runRetryDelay: RUN_RETRY_DELAY_MS,
    // A killed worker counts as a stall: let a store survive a few of them.
    maxStalledCount: 10,
    autorun: false,
  });
  // The worker's queue names the stores' lock keys, as BullMQ's own scripts read them.
  const reporter = new Reporter(commands, weather, worker);
  let lastError = '';
  const onlyLockLoss = watchLockLoss(worker);
  weather.watch(worker, (error) => {
    // A late worker's own completion is refused by BullMQ too; the line
    // about the lost lock has said it already.
    if (onlyLockLoss(error)) return;
    const message = weather.redact(error);
    if (message !== lastError) {
      options.log.event('queue_error', `queue error: ${message}`, { error: message }, 'warn');
    }
    lastError = message;
  });
  const stopped = new Promise<void>((resolve) => {
    const stop = (): void => {
      for (const run of running.values()) run.abort();
      resolve();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  options.log.event(
    'worker_ready',
    `ready: ${options.concurrency} slot(s) on ${options.target.safe} (queue ${PREFIX}:${QUEUE_NAME}) as worker ${id}`,
    {
      worker_id: id,
      slots: options.concurrency,
      redis: options.target.safe,
      queue: `${PREFIX}:${QUEUE_NAME}`,
    },
  );
  const loop = worker.run();
  await stopped;
  try {
    await worker.close();
    await loop;
  } finally {
    await engines.close();
    await presence.stop();
    bullConnection.disconnect();
    commands.disconnect();
  }
}

type StoreContext = {
  readonly reporter: Reporter;
  /** One line of an error, credentials hidden. */
  readonly describe: (error: unknown) => string;
  readonly engines: EngineCache;
  readonly presence: Presence;
  readonly log: EventLog;
};

async function runOneStore(
  job: Job<StoreJobData>,
  bullJobId: string,
  token: string,
  context: StoreContext,
  signal: AbortSignal,
): Promise<boolean> {
  const data = job.data;
  if (data.v !== PROTOCOL_VERSION) {
    throw new Error(`store job of protocol ${data.v}; this worker speaks ${PROTOCOL_VERSION}`);
  }
  const { store } = data;
  const count = store.urls.length;
  const reported = await context.reporter.reported(data.jobId, store.index);
  if (reported > count) return false; // Its end is reported already (or it was called off).
  const startAt = Math.max(data.startAt, reported);
  context.log.event(
    'store_started',
    `start        ${describeStore(data)} from image ${startAt + 1} of ${count}`,
    { ...storeFields(data), from: startAt },
  );
  context.presence.add(bullJobId, data.jobId, store.index, store.storeId);
  const started = performance.now();

  const stop = new AbortController();
  const storeSignal = AbortSignal.any([signal, stop.signal]);
  const fence = { jobId: data.jobId, bullJobId, token };
  let refused: Exclude<ReportOutcome, 'recorded'> | 'unreported' | undefined;
  let unreported = 0;
  let reports = Promise.resolve();
  const send = (entry: ResultEntry): void => {
    unreported++;
    if (unreported > MAX_UNREPORTED && !stop.signal.aborted) {
      // Redis has not taken the last results for a while: download no more
      // (the store is handed back once they are reported).
      context.log.event(
        'store_paused',
        `paused       ${describeStore(data)}: ${MAX_UNREPORTED} results wait for Redis; it goes back to the queue once they are in`,
        storeFields(data),
        'warn',
      );
      stop.abort();
    }
    // In order, one at a time: the stream keeps the store's image order.
    // Never rejects: a report is retried until Redis answers it.
    reports = reports.then(async () => {
      if (refused) return;
      try {
        const outcome = await context.reporter.report(fence, entry, count);
        if (outcome !== 'recorded') {
          refused = outcome;
          stop.abort();
        }
      } catch (error) {
        // Not weather (that is waited out): the store stops here, unreported.
        const message = context.describe(error);
        context.log.event(
          'report_error',
          `report error ${describeStore(data)}: ${message}`,
          { ...storeFields(data), error: message },
          'warn',
        );
        refused = 'unreported';
        stop.abort();
      } finally {
        unreported--;
      }
    });
  };
  // The coordinator calls a store off in Redis (fail-fast, a cancel): seen
  // within a poll, not only at the next report.
  let polling: Promise<void> | undefined;
  const poll = setInterval(() => {
    polling ??= context.reporter
      .calledOff(data.jobId, store.index)
      .then((calledOff) => {
        if (calledOff && !refused) {
          refused = 'duplicate';
          stop.abort();
        }
      })
      .finally(() => {
        polling = undefined;
      });
  }, CALL_OFF_POLL_MS);
  let tailFrom: number | undefined;
  const tail: ImageResult[] = [];
  const sink = (index: number, result: ImageResult): void => {
    if (result.status === 'done' && tailFrom === undefined) {
      send({ t: 'image', s: store.index, i: index, r: result });
      return;
    }
    // A failed image and the skipped ones after it are final only with the
    // store's end: they travel in the end entry.
    tailFrom ??= index;
    tail.push(result);
  };

  const outcome = await runStore(
    store,
    context.engines.depsFor(data.settings),
    sink,
    storeSignal,
    startAt,
  ).finally(() => {
    clearInterval(poll);
  });
  if (outcome.status !== 'interrupted') {
    send({
      t: 'end',
      s: store.index,
      from: tailFrom ?? count,
      tail,
      status: outcome.status,
      ...(outcome.status === 'failed' ? { error: outcome.error } : {}),
    });
  }
  await reports;
  const ms = performance.now() - started;
  await polling;
  if (refused === 'unreported') throw new Error(`could not report store ${store.storeId}`);
  if (refused === 'lock-lost') {
    context.log.event(
      'store_lock_lost',
      `lost lock    ${describeStore(data)}: it stalled or Redis lost it; stopped here, it goes on elsewhere`,
      storeFields(data),
      'warn',
    );
    throw new Error(`lost the lock on store ${store.storeId}`);
  }
  if (refused === 'duplicate') {
    context.log.event('store_called_off', `called off   ${describeStore(data)}`, storeFields(data));
    return false;
  }
  if (outcome.status === 'interrupted') return true;
  logStoreEnd(context.log, `${outcome.status.padEnd(12)} ${describeStore(data)}`, {
    ...storeFields(data),
    status: outcome.status,
    error: outcome.status === 'failed' ? outcome.error : undefined,
    ms,
  });
  return false;
}

/** The fields every store event of a worker carries. */
function storeFields(data: StoreJobData): {
  readonly job_id: string;
  readonly store_id: string;
  readonly images: number;
} {
  return { job_id: data.jobId, store_id: data.store.storeId, images: data.store.urls.length };
}

function describeStore(data: StoreJobData): string {
  return `store ${data.store.storeId} (job ${data.jobId.slice(0, 8)}, ${data.store.urls.length} images)`;
}

/**
 * One downloader and one set of store deps per distinct settings: stores of
 * the same job share a connection pool, jobs with other limits get their own.
 */
class EngineCache {
  readonly #options: WorkerOptions;
  readonly #engines = new Map<string, { downloader: Downloader; deps: StoreDeps }>();

  constructor(options: WorkerOptions) {
    this.#options = options;
  }

  depsFor(settings: ProcessingSettings): StoreDeps {
    const key = JSON.stringify(settings);
    let engine = this.#engines.get(key);
    if (!engine) {
      const downloader = createDownloader({
        timeoutMs: settings.timeoutMs,
        maxBytes: settings.maxBytes,
        retries: settings.retries,
        headerOnly: settings.headerOnly,
        perHost: this.#options.perHost,
        threads: this.#options.threads,
        ...this.#options.network,
        // `serve`'s jobs (unless --allow-private): private, loopback and
        // metadata addresses refused, the attempt deadline as connect timeout.
        connect: settings.guardAddresses
          ? guardedConnector(createAddressGuard(), { connect: { timeout: settings.timeoutMs } })
          : undefined,
      });
      const deps = createStoreDeps({
        fetchImage: (url, fetchSignal) => downloader.fetchImage(url, fetchSignal),
        gpuDelay: settings.gpuDelay,
        seed: settings.seed ?? undefined,
        sleep: this.#options.sleep,
        observer: this.#options.metrics,
      });
      engine = { downloader, deps };
      this.#engines.set(key, engine);
    }
    return engine.deps;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#engines.values()].map((engine) => engine.downloader.close()));
  }
}
