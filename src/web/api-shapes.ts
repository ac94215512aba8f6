/**
 * The shapes of the dashboard's JSON API that both sides name: the page
 * reads them, and the server (src/serve/dashboard) builds its answers to
 * match. Types only, and nothing of the server, so the page can import them.
 */
import type { Counts, JobStatus } from '../types.js';

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
