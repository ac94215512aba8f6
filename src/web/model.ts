/**
 * The data the page shows, in the shapes the JSON API sends, and the
 * arithmetic on it: progress, rate, ETA, and applying a live `job` event to
 * a results document.
 */
import type { JobDelta, JobRow, Overview, WorkerInfo } from '../shared/api-shapes.js';
import { FINISHED_STORE_STATUSES, jobStatusOf, storeErrors } from '../shared/job-rules.js';
import { activeSeconds } from '../shared/timeline.js';
import type {
  Counts,
  ImageResult,
  JobStatus,
  ProgressSample,
  ResultsDocument,
  StoreResult,
  StoreStatus,
} from '../types.js';

export type {
  Counts,
  ImageResult,
  JobDelta,
  JobRow,
  JobStatus,
  Overview,
  ProgressSample,
  ResultsDocument,
  StoreResult,
  StoreStatus,
  WorkerInfo,
};

/** A results document the page may change in place. */
export type LiveJob = {
  -readonly [K in keyof ResultsDocument]: K extends 'stores' ? LiveStore[] : ResultsDocument[K];
};
export type LiveStore = {
  -readonly [K in keyof StoreResult]: K extends 'images' ? ImageResult[] : StoreResult[K];
};

export function liveJob(document: ResultsDocument): LiveJob {
  return {
    ...document,
    stores: document.stores.map((store) => ({ ...store, images: [...store.images] })),
  };
}

/**
 * Applies a `job` event. Events carry states, not increments, so applying
 * one twice, or one older than the document, does no harm: a finished
 * store or image never goes back.
 */
export function applyDelta(
  job: LiveJob,
  delta: JobDelta,
): { stores: Set<number>; images: Set<string> } {
  const touched = { stores: new Set<number>(), images: new Set<string>() };
  for (const change of delta.stores) {
    const store = job.stores[change.s];
    if (
      !store ||
      (FINISHED_STORE_STATUSES.has(store.status) && !FINISHED_STORE_STATUSES.has(change.status))
    )
      continue;
    store.status = change.status;
    if (change.error === undefined) delete store.error;
    else store.error = change.error;
    touched.stores.add(change.s);
  }
  for (const change of delta.images) {
    const images = job.stores[change.s]?.images;
    const image = images?.[change.i];
    if (!images || !image || (image.status !== 'pending' && change.r.status === 'pending'))
      continue;
    images[change.i] = change.r;
    touched.stores.add(change.s);
    touched.images.add(`${change.s}:${change.i}`);
  }
  job.counts = countsOf(job);
  job.status = jobStatusOf(job.stores);
  if (job.status === 'failed') job.error = storeErrors(job.stores);
  if (delta.updated_at > job.updated_at) job.updated_at = delta.updated_at;
  return touched;
}

export function countsOf(job: { readonly stores: readonly StoreResult[] }): Counts {
  const counts = {
    stores: job.stores.length,
    images: 0,
    done: 0,
    failed: 0,
    skipped: 0,
    pending: 0,
  };
  for (const store of job.stores)
    for (const image of store.images) {
      counts.images++;
      counts[image.status]++;
    }
  return counts;
}

export function storesDone(stores: readonly StoreResult[]): number {
  return stores.filter((store) => FINISHED_STORE_STATUSES.has(store.status)).length;
}

export type Pace = {
  /** Images worked on: done or failed (a skipped image took no work). */
  readonly worked: number;
  /** Seconds the job was worked on (to its end, once it ended; without the idle time before a resume). */
  readonly seconds: number;
  /** Images worked on per second of that time. */
  readonly perSecond: number | undefined;
  /** Seconds left at that pace; undefined when unknown, 0 once ended. */
  readonly eta: number | undefined;
};

/**
 * Rate and ETA over active time: the job's timeline when it has one (see
 * `ResultsDocument.timeline`), else its start to its end (or `now`).
 */
export function paceOf(
  job: Pick<ResultsDocument, 'counts' | 'status' | 'created_at' | 'timeline'>,
  endedAt: string | undefined,
  now: number,
): Pace {
  const { counts, status } = job;
  const worked = counts.done + counts.failed;
  const start = Date.parse(job.created_at);
  const end = endedAt === undefined ? now : Date.parse(endedAt);
  const seconds =
    activeSeconds(job.timeline, status === 'ongoing' ? now : undefined) ??
    Math.max(0, (end - start) / 1000);
  const perSecond = seconds > 0 && worked > 0 ? worked / seconds : undefined;
  const eta =
    status !== 'ongoing' ? 0 : perSecond === undefined ? undefined : counts.pending / perSecond;
  return { worked, seconds, perSecond, eta };
}

/** The image being worked on in a running store: its first pending one. */
export function inFlightIndex(store: StoreResult): number {
  if (store.status !== 'ongoing') return -1;
  return store.images.findIndex((image) => image.status === 'pending');
}
