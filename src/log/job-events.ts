/**
 * The job and store events, one vocabulary for `serve`, `run` and `worker`:
 * the same event names and fields wherever a job starts or ends, so one log
 * query finds them all (docs/metrics.md lists them).
 */
import { plural } from '../utils/plural.js';
import type { EventLog, LogFields } from './event-log.js';

type ImageCounts = {
  readonly stores: number;
  readonly images: number;
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
};

/** `job_submitted` (a new job) or `job_resumed` (taken up again). */
export function logJobStart(
  log: EventLog,
  how: 'submitted' | 'resumed',
  jobId: string,
  counts: Pick<ImageCounts, 'stores' | 'images'>,
  extra: LogFields = {},
): void {
  log.event(
    `job_${how}`,
    `job ${jobId} ${how}: ${plural(counts.stores, 'store')}, ${plural(counts.images, 'image')}`,
    { job_id: jobId, stores: counts.stores, images: counts.images, ...extra },
  );
}

export type JobEnd = {
  readonly status: string;
  readonly counts: ImageCounts;
  readonly ms: number;
  /** serve: DELETE /api/jobs/<id> ended it. */
  readonly cancelled?: boolean | undefined;
  /** run: a signal stopped it; it is resumable. */
  readonly interrupted?: boolean | undefined;
};

/** `job_finished`: its status and image counts, and how long this process ran it. */
export function logJobEnd(log: EventLog, jobId: string, end: JobEnd, extra: LogFields = {}): void {
  const { counts } = end;
  const how = end.interrupted ? 'interrupted' : end.cancelled ? 'cancelled' : end.status;
  const seconds = (end.ms / 1000).toFixed(1);
  log.event(
    'job_finished',
    `job ${jobId} ${how}: ${counts.done} done, ${counts.failed} failed, ${counts.skipped} skipped of ${plural(counts.images, 'image')} in ${plural(counts.stores, 'store')} (${seconds} s)`,
    {
      job_id: jobId,
      status: end.status,
      cancelled: end.cancelled,
      interrupted: end.interrupted,
      stores: counts.stores,
      images: counts.images,
      done: counts.done,
      failed: counts.failed,
      skipped: counts.skipped,
      duration_ms: Math.round(end.ms),
      ...extra,
    },
  );
}

export type StoreEnd = LogFields & {
  readonly job_id: string;
  readonly store_id: string;
  readonly status: string;
  readonly error?: string | undefined;
  /** How long this process ran the store. */
  readonly ms?: number | undefined;
};

/** `store_finished`: `msg` says which store in words; ` in 1.2 s` is added when the time is known. */
export function logStoreEnd(log: EventLog, msg: string, end: StoreEnd): void {
  const { ms, ...fields } = end;
  const took = ms === undefined ? '' : ` in ${(ms / 1000).toFixed(1)} s`;
  log.event('store_finished', `${msg}${took}`, {
    ...fields,
    duration_ms: ms === undefined ? undefined : Math.round(ms),
  });
}
