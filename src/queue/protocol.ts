/**
 * What coordinators and workers agree on: the queue, the Redis keys, the
 * data of a store job and the entries of a job's results stream. Plain
 * serialisable shapes: they cross machines as JSON.
 */
import type { QueueBase } from 'bullmq';

import type { JournalEntry } from '../results/job-state.js';
import type { GpuDelay, ImageResult, StoreTask } from '../types.js';

/** BullMQ's key prefix and queue name: every key lives under `imgjob:`. */
export const PREFIX = 'imgjob';
export const QUEUE_NAME = 'stores';
/**
 * The consumer group of a results stream: the job's coordinator. Each
 * coordinator reads under its own id (its lease's), so two never share a
 * consumer.
 */
export const GROUP = 'coordinator';

/**
 * The reason a job's signal fires with when the job is cancelled (serve's
 * DELETE), not stopped: the coordinator then calls its stores off on the
 * workers, where a stop leaves them running for a later --resume.
 */
export const CANCEL_REASON = 'cancel';

/** Bumped when the shapes below change incompatibly; a worker refuses others. */
export const PROTOCOL_VERSION = 2;

/**
 * Everything that changes an image's result travels with the store, so any
 * worker processes it exactly as the coordinator's own machine would.
 */
export type ProcessingSettings = {
  readonly gpuDelay: GpuDelay;
  readonly seed: number | null;
  readonly headerOnly: boolean;
  readonly maxBytes: number;
  readonly timeoutMs: number;
  readonly retries: number;
  /** Refuse private, loopback and metadata addresses (`serve` without --allow-private). */
  readonly guardAddresses: boolean;
};

/** The data of one BullMQ job: one store of one imgjob job, its images in order. */
export type StoreJobData = {
  readonly v: number;
  readonly jobId: string;
  readonly store: StoreTask;
  /** The first image without a result when the store was enqueued. */
  readonly startAt: number;
  readonly settings: ProcessingSettings;
};

/** One entry of a job's results stream. */
export type ResultEntry =
  /** A done image: as the job's journal records it. */
  | Extract<JournalEntry, { readonly t: 'image' }>
  /**
   * The end of a store, with the results that are final only together with
   * it (a failed image and the skipped ones after it): one entry, so a
   * coordinator never records a failed image without its store's end.
   */
  | {
      readonly t: 'end';
      readonly s: number;
      readonly from: number;
      readonly tail: readonly ImageResult[];
      readonly status: 'completed' | 'failed';
      readonly error?: string;
    };

/**
 * BullMQ job id of one hand-out of a store: `<job id>.<store>.<hand-out>`
 * (BullMQ refuses `:` in ids). Each hand-out has its own id, so a store
 * handed out again (Redis lost it) never shares a lock with a run of it that
 * a worker may still be finishing.
 */
export function storeJobId(jobId: string, store: number, handOut: string): string {
  return `${jobId}.${store}.${handOut}`;
}

/** Hash: store index → BullMQ job id of its current hand-out (for re-attaching). */
export function handOutsKey(jobId: string): string {
  return `${PREFIX}:handouts:${jobId}`;
}

export function resultsStreamKey(jobId: string): string {
  return `${PREFIX}:results:${jobId}`;
}

/** Hash: store index → images reported (the end of a store counts one more). */
export function progressKey(jobId: string): string {
  return `${PREFIX}:progress:${jobId}`;
}

/** What names a queue's keys: any BullMQ `Queue` or `Worker` of `PREFIX:QUEUE_NAME`. */
export type QueueKeys = Pick<QueueBase, 'toKey'>;

/**
 * BullMQ's lock key of a queue job: it holds the token of the worker that
 * has it. BullMQ names it from its queue's `toKey` with a `:lock` tail (its
 * `extendLock`, `moveToFinished`…); test/queue-lock-key.test.ts fails if a
 * BullMQ release moves it.
 */
export function lockKey(queue: QueueKeys, bullJobId: string): string {
  return `${queue.toKey(bullJobId)}:lock`;
}

/** The idempotency key of a result: (job, store, image index) or the store's end. */
export function idempotencyKey(entry: ResultEntry, jobId: string): string {
  return `${jobId}/${entry.s}/${entry.t === 'image' ? entry.i : 'end'}`;
}

/**
 * The position an entry takes in its store's progress: an image its index,
 * the end the image count — one past every image, so nothing is accepted
 * after it.
 */
export function positionOf(entry: ResultEntry, imageCount: number): number {
  return entry.t === 'image' ? entry.i : imageCount;
}

/** A progress value that no report can pass: the store was called off (fail-fast). */
export const CALLED_OFF = 1_000_000_000;

/** Set: the ids of workers that announced themselves (readers prune the gone). */
export const WORKERS_KEY = `${PREFIX}:workers`;

/** String (JSON `WorkerPresence`): one worker's presence; it expires unless renewed. */
export function workerKey(workerId: string): string {
  return `${PREFIX}:worker:${workerId}`;
}

/**
 * Who a coordinator or a worker is, in Redis: a job's lease names its
 * coordinator, a worker's presence the worker.
 */
export type ProcessIdentity = {
  /** `<host>:<pid>:<random>`: two processes never share one (a worker's is also its BullMQ name, in CLIENT LIST). */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
};

/**
 * What a worker tells about itself: who it is and the stores it runs now.
 * Nothing of the Redis URL: a dashboard shows it as it is.
 */
export type WorkerPresence = ProcessIdentity & {
  readonly v: number;
  /** Stores it runs at once. */
  readonly slots: number;
  /** Epoch ms. */
  readonly started_at: number;
  /** Epoch ms of this announcement. */
  readonly seen_at: number;
  readonly running: readonly {
    /** The job id in Redis (with the coordinator's namespace, if any). */
    readonly job: string;
    readonly store: number;
    readonly store_id: string;
    /** Epoch ms. */
    readonly since: number;
  }[];
};
