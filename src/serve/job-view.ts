/**
 * `GET /api/jobs/<id>`: a job at a glance — its status, counts and times,
 * and one line per store with the store's own counts — without the images
 * (those are in `/api/jobs/<id>/results`).
 */
import type { Counts, JobStatus, ResultsDocument } from '../types.js';
import type { StoreRow } from '../shared/api-shapes.js';
import { CANCELLED } from '../shared/job-rules.js';

/** One store at a glance: the search's row without its position. */
export type StoreSummary = Omit<StoreRow, 'index'>;

export type JobView = {
  readonly job_id: string;
  readonly status: JobStatus;
  /** True when the job was cancelled (DELETE): its unfinished stores failed with "cancelled". */
  readonly cancelled: boolean;
  readonly created_at: string;
  readonly updated_at: string;
  readonly finished_at?: string;
  readonly counts: Counts;
  readonly stores: readonly StoreSummary[];
};

export { CANCELLED };

export function jobView(document: ResultsDocument): JobView {
  const stores = document.stores.map((store): StoreSummary => {
    const counts = { images: store.images.length, done: 0, failed: 0, skipped: 0, pending: 0 };
    for (const image of store.images) counts[image.status]++;
    return {
      store_id: store.store_id,
      status: store.status,
      ...(store.error === undefined ? {} : { error: store.error }),
      counts,
    };
  });
  return {
    job_id: document.job_id,
    status: document.status,
    cancelled: document.stores.some((store) => store.error === CANCELLED),
    created_at: document.created_at,
    updated_at: document.updated_at,
    ...(document.finished_at === undefined ? {} : { finished_at: document.finished_at }),
    counts: document.counts,
    stores,
  };
}
