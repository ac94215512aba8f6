/**
 * The shapes of the dashboard's JSON API and its events that both sides
 * name: the page reads them, and the server (src/serve/dashboard) builds its
 * answers to match. Types only.
 */
import type { Counts, ImageResult, JobStatus, ProgressSample, StoreStatus } from '../types.js';

/** One line of the job list (`GET /api/jobs`). */
export type JobSummary = {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly created_at: string;
  readonly updated_at: string;
  readonly finished_at?: string;
  readonly counts: Counts;
};

/** One row of the dashboard's jobs list, as `GET /api/overview` (and its `jobs` event) answers it. */
export type JobRow = JobSummary & {
  /** Stores that reached an end (completed, failed or skipped). */
  readonly stores_done: number;
  /** Ended by a cancel: its unfinished stores failed with the error `cancelled`. */
  readonly cancelled?: boolean;
};

/** One store of `GET /api/jobs/<id>/stores` (the job page's search). */
export type StoreRow = {
  /** Its position in the job. */
  readonly index: number;
  readonly store_id: string;
  readonly status: StoreStatus;
  readonly error?: string;
  readonly counts: Omit<Counts, 'stores'>;
};

/** One page of a store search; `next_after` is the `after` of the next page, if any. */
export type StorePage = {
  readonly total: number;
  readonly stores: readonly StoreRow[];
  readonly next_after: number | null;
};

/** What a dashboard action (`POST /api/jobs/<id>/cancel|retry`) answers: the job's new state. */
export type ActionResult = {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly cancelled: boolean;
  /** What happened, in words for the page. */
  readonly message: string;
};

/** A worker process of `serve --queue`, as the dashboard's Workers panel shows it. */
export type WorkerInfo = {
  readonly id: string;
  readonly host?: string;
  readonly pid?: number;
  /** Stores it runs at once. */
  readonly slots?: number;
  /** Epoch ms of the last sign of life. */
  readonly last_seen?: number;
  /** What it runs now, of this server's jobs. */
  readonly running: readonly { readonly job_id: string; readonly store_id: string }[];
  /** Stores it runs for other servers or runs sharing the queue. */
  readonly other_stores?: number;
  /** Epoch ms when it was found lost (no sign of life, no clean stop); `running` is what it ran then. */
  readonly lost_at?: number;
};

/** `GET /api/overview`: one page of the jobs list, and what the page shows around it. */
export type Overview = {
  readonly jobs: readonly JobRow[];
  readonly next_before: number | null;
  readonly totals: Readonly<Record<JobStatus | 'all', number>>;
  /** Event streams open on the server. */
  readonly streams: number;
  readonly now: string;
  readonly workers?: readonly WorkerInfo[];
};

/**
 * The `job` event: what changed in one job since the event before. It
 * carries states, not increments, so applying one twice does no harm.
 */
export type JobDelta = {
  readonly job_id: string;
  readonly status: JobStatus;
  readonly counts: Counts;
  readonly updated_at: string;
  /** Stores whose status (and error) changed, by position. */
  readonly stores: readonly {
    readonly s: number;
    readonly status: StoreStatus;
    readonly error?: string;
  }[];
  /** Images with a new result, by store and position. */
  readonly images: readonly { readonly s: number; readonly i: number; readonly r: ImageResult }[];
  /** The job's progress when the event was made. */
  readonly sample: ProgressSample | null;
};
