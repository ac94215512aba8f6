import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { PreparedJob } from '../engine/controller.js';
import type { JobOutcome } from '../engine/job.js';
import type { RunOptions } from '../types.js';
import { connect, preflight } from './connection.js';
import { JobRun } from './job-run.js';
import { PREFIX, QUEUE_NAME, type ProcessingSettings, type StoreJobData } from './protocol.js';
import { parseRedisUrl, type RedisTarget } from './redis-url.js';
import { Slots } from './slots.js';

export type QueueRunnerOptions = Pick<
  RunOptions,
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
  close(): Promise<void>;
};

/**
 * The coordinator (call `checkQueue` first): hands each job's stores to the
 * workers, at most `concurrency` at a time, and records every result a
 * worker reports into the job's state — so its journal and results file are
 * the same as a single machine's.
 */
export function openQueueRunner(target: RedisTarget, options: QueueRunnerOptions): QueueRunner {
  const queueConnection = connect(target, 'imgjob-coordinator');
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
  const slots = new Slots(options.concurrency);
  const settings = settingsOf(options);
  const readers = new Set<Redis>();
  let checked: Promise<void> | undefined;
  return {
    async submit(job, signal) {
      checked ??= noticeIdleQueue(queue, target, options.onNotice);
      await checked;
      const reader = connect(target, 'imgjob-coordinator-reader');
      readers.add(reader);
      try {
        return await new JobRun(job, queue, reader, slots, { ...options, settings }).run(signal);
      } finally {
        readers.delete(reader);
        reader.disconnect();
      }
    },
    get load() {
      return { running: slots.taken, waiting: 0 };
    },
    async close() {
      for (const reader of readers) reader.disconnect();
      await queue.close();
      queueConnection.disconnect();
    },
  };
}

/** A coordinator with no worker would wait silently: say so once. */
async function noticeIdleQueue(
  queue: Queue<StoreJobData>,
  target: RedisTarget,
  onNotice: ((line: string) => void) | undefined,
): Promise<void> {
  if (!onNotice) return;
  // CLIENT LIST may be refused by a managed Redis: then nothing is said.
  const workers = await queue.getWorkersCount().catch(() => undefined);
  if (workers === 0) {
    onNotice(
      `no imgjob worker is connected to ${target.safe} yet: the stores wait in the queue until one starts (imgjob worker --queue <url>)`,
    );
  }
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
