import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { PreparedJob } from '../engine/controller.js';
import type { JobOutcome } from '../engine/job.js';
import type { ResolvedRunOptions } from '../types.js';
import { InputError, QueueUnavailableError } from '../utils/errors.js';
import { realSleep } from '../utils/sleep.js';
import { connect, preflight } from './connection.js';
import { JobRun } from './job-run.js';
import { LEASE_MS, newCoordinatorId } from './lease.js';
import { PREFIX, QUEUE_NAME, type ProcessingSettings, type StoreJobData } from './protocol.js';
import { parseRedisUrl, type RedisTarget } from './redis-url.js';
import { Slots } from './slots.js';
import { describeCondition, RedisWeather } from './weather.js';
import { readWorkers } from './worker-watch.js';
import { plural } from '../utils/plural.js';

/** Default `--queue-wait`: how long an unusable Redis is waited for. */
export const DEFAULT_QUEUE_WAIT_MS = 10 * 60_000;
/** Default `--queue-retention`: how long an unfinished job's keys wait for `--resume`. */
export const DEFAULT_QUEUE_RETENTION_MS = 7 * 24 * 3600_000;
const WAITING_NOTICE_MS = 30_000;
/** How often the coordinator looks at the time (give up? say it waits?). */
const WATCH_MS = 1_000;

export type QueueRunnerOptions = Pick<
  ResolvedRunOptions,
  'gpuDelay' | 'seed' | 'headerOnly' | 'maxBytes' | 'timeoutMs' | 'retries' | 'failFast'
> & {
  /** Most stores in flight over the whole cluster, over all jobs of this run. */
  readonly concurrency: number;
  readonly storeMaster?: { readonly ids: ReadonlySet<string>; readonly source: string } | undefined;
  /** Workers refuse private addresses for these jobs (`serve`). @default false */
  readonly guardAddresses?: boolean | undefined;
  /**
   * Prefixes the job ids in Redis, for ids unique only within their source
   * (`serve`'s database row ids). @default none: `run`'s ids are UUIDs
   */
  readonly namespace?: string | undefined;
  /**
   * Resolves once every change recorded so far is durable, so a result is
   * acknowledged (and leaves Redis) only then.
   * Without it, results are acknowledged as soon as they are recorded.
   */
  readonly durable?: (() => Promise<void>) | undefined;
  /** Told what a user should know, e.g. that no worker is connected yet. */
  readonly onNotice?: ((line: string) => void) | undefined;
  /**
   * Told once Redis stayed unusable for `queueWaitMs` (exit 75), or when
   * another coordinator holds a job (exit 2): the caller stops the run
   * (saving its results) and ends with this error. Without it (serve) the
   * coordinator waits for Redis as long as it takes, and a job another
   * coordinator holds stops with a notice.
   */
  readonly onGiveUp?: ((error: QueueUnavailableError | InputError) => void) | undefined;
  /** @default DEFAULT_QUEUE_WAIT_MS */
  readonly queueWaitMs?: number | undefined;
  /** @default DEFAULT_QUEUE_RETENTION_MS */
  readonly retentionMs?: number | undefined;
  /** With stores out and no result for this long, say how many workers there are (and again). @default 30_000 */
  readonly waitingNoticeMs?: number | undefined;
};

/** Checks a `--queue` URL and the Redis behind it; throws an InputError (exit 2). */
export async function checkQueue(url: string): Promise<RedisTarget> {
  const target = parseRedisUrl(url);
  await preflight(target);
  return target;
}

/** Runs jobs on `imgjob worker` processes; `submit` is the same as the local Controller's. */
export type QueueRunner = {
  submit(job: PreparedJob, signal: AbortSignal): Promise<JobOutcome>;
  /** Stores handed out (running or waiting for a worker), for health reports. */
  readonly load: { readonly running: number; readonly waiting: number };
  /**
   * Stores are out and no result came for a while, with no worker on this
   * queue (the dashboard says "waiting for workers").
   */
  readonly waitingForWorkers: boolean;
  close(): Promise<void>;
};

/**
 * The coordinator (call `checkQueue` first): hands each job's stores to the
 * workers, at most `concurrency` at a time, and records every result a
 * worker reports into the job's state — so its journal and results file are
 * the same as a single machine's.
 */
export function openQueueRunner(target: RedisTarget, options: QueueRunnerOptions): QueueRunner {
  const say = (line: string): void => options.onNotice?.(line);
  const weather = new RedisWeather(target, say);
  const queueConnection = connect(target, 'imgjob-coordinator', weather);
  const queue = new Queue<StoreJobData>(QUEUE_NAME, {
    connection: queueConnection,
    prefix: PREFIX,
    defaultJobOptions: {
      // Retries are for infrastructure failures only (a worker's bug, Redis
      // gone mid-report); an image's failure is a result, never a retry.
      attempts: 3,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: true,
      // Kept a day, for the coordinator to read why and for a person to look.
      removeOnFail: { age: 24 * 3600 },
    },
  });
  weather.watch(queue);
  const slots = new Slots(options.concurrency);
  const coordinatorId = newCoordinatorId();
  const runOptions = {
    ...options,
    settings: settingsOf(options),
    weather,
    coordinatorId,
    retentionMs: options.retentionMs ?? DEFAULT_QUEUE_RETENTION_MS,
    onResult: () => {
      lastResult = Date.now();
    },
  };
  const readers = new Set<Redis>();
  let lastResult = Date.now();
  let lastNotice = 0;
  let workers: number | undefined;
  let gaveUp = false;
  let counting: Promise<void> | undefined;
  const countWorkers = (): Promise<void> =>
    (counting ??= readWorkers(queueConnection, undefined)
      .then((list) => {
        workers = list.length;
      })
      .catch(() => undefined)
      .finally(() => {
        counting = undefined;
      }));
  const watch = setInterval(() => {
    const now = Date.now();
    const bad = weather.current;
    const waitMs = options.queueWaitMs ?? DEFAULT_QUEUE_WAIT_MS;
    if (bad && options.onGiveUp && !gaveUp && now - bad.since >= waitMs) {
      gaveUp = true;
      options.onGiveUp(
        new QueueUnavailableError(
          `Redis at ${target.safe} ${describeCondition(bad.condition)} for ${formatWait(now - bad.since)} (--queue-wait); results saved: run the same command with --resume`,
        ),
      );
      return;
    }
    const noticeMs = options.waitingNoticeMs ?? WAITING_NOTICE_MS;
    const quiet = slots.taken > 0 && now - lastResult >= noticeMs;
    if (!quiet) {
      workers = undefined;
      return;
    }
    if (bad || now - lastNotice < noticeMs) return;
    lastNotice = now;
    countWorkers()
      .then(() => {
        if (workers === undefined) return;
        say(
          `waiting: ${slots.taken} store(s) out, no result for ${formatWait(Date.now() - lastResult)}; ${describeWorkers(workers, target)}`,
        );
      })
      .catch(() => undefined);
  }, WATCH_MS);
  watch.unref();
  let checked: Promise<void> | undefined;
  return {
    async submit(job, signal) {
      checked ??= countWorkers().then(() => {
        if (workers === 0) {
          say(
            `no imgjob worker on this queue (${target.safe}, prefix ${PREFIX}) yet: the stores wait until one starts (imgjob worker --queue <url>)`,
          );
        }
      });
      await checked;
      const reader = connect(target, 'imgjob-coordinator-reader', weather);
      readers.add(reader);
      try {
        for (;;) {
          try {
            return await new JobRun(job, queue, reader, slots, runOptions).run(signal);
          } catch (error) {
            // Another coordinator holds the job: `run` leaves it alone (exit
            // 2); a server keeps the job and tries again once a lease
            // nobody renews would have ended.
            if (!(error instanceof InputError)) throw error;
            if (options.onGiveUp) {
              options.onGiveUp(error);
              return { status: job.state.status, interrupted: true };
            }
            say(`${error.message}; trying again in ${LEASE_MS / 1000} s`);
            await realSleep(LEASE_MS, signal).catch(() => undefined);
            if (signal.aborted) return { status: job.state.status, interrupted: true };
          }
        }
      } finally {
        readers.delete(reader);
        reader.disconnect();
      }
    },
    get load() {
      return { running: slots.taken, waiting: 0 };
    },
    get waitingForWorkers() {
      return workers === 0 && slots.taken > 0;
    },
    async close() {
      clearInterval(watch);
      for (const reader of readers) reader.disconnect();
      // BullMQ's close waits for Redis: not past a moment, not at all when it is away.
      if (!weather.current)
        await Promise.race([queue.close().catch(() => undefined), delay(2_000)]);
      queueConnection.disconnect();
    },
  };
}

function describeWorkers(count: number, target: RedisTarget): string {
  const where = `on ${target.safe} (prefix ${PREFIX})`;
  if (count === 0) return `no imgjob worker ${where}: start one with imgjob worker --queue <url>`;
  return `${plural(count, 'imgjob worker')} ${where}`;
}

/** `45 s`, `10 min`. */
function formatWait(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 120) return `${seconds} s`;
  return `${Math.round(seconds / 60)} min`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** What changes results travels with every store. */
function settingsOf(options: QueueRunnerOptions): ProcessingSettings {
  return {
    gpuDelay: options.gpuDelay,
    seed: options.seed ?? null,
    headerOnly: options.headerOnly,
    maxBytes: options.maxBytes,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    guardAddresses: options.guardAddresses ?? false,
  };
}
