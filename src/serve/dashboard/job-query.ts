/**
 * The dashboard's reads of the jobs table: one page of the jobs list
 * (filtered by status, searched by job id or store id, keyset-paged by id),
 * the totals per status, and the jobs that changed since the last look.
 * Read-only: every write stays with JobRecords.
 */
import type { Database, Statement } from 'better-sqlite3';

import type { JobStatus } from '../../types.js';
import type { JobRow } from '../../shared/api-shapes.js';
import { CANCELLED, FINISHED_STORE_STATUSES } from '../../shared/job-rules.js';

export type { JobRow };

export type JobFilter = {
  readonly status?: JobStatus | undefined;
  /** A job id, or the start of a store id (case-insensitive). */
  readonly search?: string | undefined;
  /** Only jobs with a smaller id (the keyset of the next page). */
  readonly before?: number | undefined;
  readonly limit: number;
};

export type Totals = Readonly<Record<JobStatus | 'all', number>>;

type Row = {
  id: number;
  status: JobStatus;
  store_count: number;
  image_count: number;
  done: number;
  failed: number;
  skipped: number;
  stores_done: number;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  cancelled: 0 | 1;
};

/** `('completed', 'failed', 'skipped')`: the statuses of a store that ended, for `IN`. */
const FINISHED = `(${[...FINISHED_STORE_STATUSES].map((status) => `'${status}'`).join(', ')})`;

// A cancel leaves a failed job whose unfinished stores failed "cancelled":
// looked for in failed jobs only, and stops at the first such store.
const CANCELLED_COLUMN = `CASE WHEN status = 'failed' THEN EXISTS (SELECT 1 FROM stores c
    WHERE c.job_id = jobs.id AND c.status = 'failed' AND c.error = '${CANCELLED}') ELSE 0 END AS cancelled`;
const BASE_COLUMNS = `id, status, store_count, image_count, done, failed, skipped, created_at, updated_at, finished_at,
  ${CANCELLED_COLUMN}`;
const COLUMNS = `
  id, status, store_count, image_count, done, failed, skipped, created_at, updated_at, finished_at,
  ${CANCELLED_COLUMN},
  (SELECT COUNT(*) FROM stores s
    WHERE s.job_id = jobs.id AND s.status IN ${FINISHED}) AS stores_done`;

export class JobQuery {
  readonly #db: Database;
  readonly #changed: Statement;
  readonly #totals: Statement;
  readonly #storesDone: Statement;
  readonly #progress: Statement;

  constructor(db: Database) {
    this.#db = db;
    // New jobs, and the tracked ongoing ones written since `since` (an unchanged
    // job is not even read: a server with thousands running stays cheap to watch).
    this.#changed = db.prepare(`
      SELECT ${BASE_COLUMNS} FROM jobs
      WHERE id > @after OR (id IN (SELECT value FROM json_each(@ids)) AND updated_at >= @since)
      ORDER BY id`);
    this.#progress = db.prepare(
      `SELECT id, done + failed AS finished FROM jobs WHERE status = 'ongoing'`,
    );
    this.#storesDone = db.prepare(`
      SELECT job_id, COUNT(*) AS n FROM stores
      WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN ${FINISHED}
      GROUP BY job_id`);
    this.#totals = db.prepare(`SELECT status, COUNT(*) AS n FROM jobs GROUP BY status`);
  }

  /** One page, newest first; `next` is the `before` of the following page, if any. */
  page(filter: JobFilter): { readonly jobs: JobRow[]; readonly next: number | null } {
    const where = ['id < @before'];
    const params: Record<string, string | number> = {
      before: filter.before ?? Number.MAX_SAFE_INTEGER,
      limit: filter.limit + 1,
    };
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = filter.status;
    }
    const search = filter.search?.trim();
    if (search) {
      const storeMatch = `EXISTS (SELECT 1 FROM stores s WHERE s.job_id = jobs.id
                           AND s.store_id LIKE @prefix ESCAPE '\\')`;
      params.prefix = `${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      if (/^[1-9]\d{0,15}$/.test(search)) {
        where.push(`(id = @id OR ${storeMatch})`);
        params.id = Number(search);
      } else where.push(storeMatch);
    }
    // Built from fixed fragments only; every value is a bound parameter.
    const rows = this.#db
      .prepare(
        `SELECT ${COLUMNS} FROM jobs WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT @limit`,
      )
      .all(params) as Row[];
    const more = rows.length > filter.limit;
    const jobs = rows.slice(0, filter.limit).map(rowOf);
    const last = jobs.at(-1);
    return { jobs, next: more && last ? Number(last.job_id) : null };
  }

  totals(): Totals {
    const totals = { all: 0, ongoing: 0, completed: 0, failed: 0 };
    for (const { status, n } of this.#totals.all() as { status: JobStatus; n: number }[]) {
      totals[status] = n;
      totals.all += n;
    }
    return totals;
  }

  /**
   * Jobs newer than `afterId`, and those of `ids` written at or after `since`
   * (ISO time) — without `stores_done` (0): it costs a count per job, so
   * `withStoresDone` adds it to the rows that are sent only.
   */
  changed(afterId: number, ids: readonly number[], since: string): JobRow[] {
    const rows = this.#changed.all({ after: afterId, ids: JSON.stringify(ids), since }) as Row[];
    return rows.map((row) => rowOf({ ...row, stores_done: 0 }));
  }

  /** Images done or failed per ongoing job (skipped ones are no work): the cheap look when nobody watches. */
  progress(): { readonly id: number; readonly finished: number }[] {
    return this.#progress.all() as { id: number; finished: number }[];
  }

  withStoresDone(rows: readonly JobRow[]): JobRow[] {
    if (rows.length === 0) return [];
    const counts = new Map(
      (
        this.#storesDone.all(JSON.stringify(rows.map((row) => Number(row.job_id)))) as {
          job_id: number;
          n: number;
        }[]
      ).map((row) => [String(row.job_id), row.n]),
    );
    return rows.map((row) => ({ ...row, stores_done: counts.get(row.job_id) ?? 0 }));
  }
}

function rowOf(row: Row): JobRow {
  const { image_count: images, done, failed, skipped } = row;
  return {
    job_id: String(row.id),
    status: row.status,
    created_at: row.created_at,
    updated_at: row.updated_at,
    ...(row.finished_at === null ? {} : { finished_at: row.finished_at }),
    counts: {
      stores: row.store_count,
      images,
      done,
      failed,
      skipped,
      pending: images - done - failed - skipped,
    },
    stores_done: row.stores_done,
    ...(row.cancelled === 1 ? { cancelled: true } : {}),
  };
}
