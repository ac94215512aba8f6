/**
 * `GET /api/jobs/<id>/stores?q=&status=&after=&limit=`: one page of a job's
 * stores, searched on the server — a 100k-store job is not sent to the page
 * to be filtered there. `q` matches anywhere in the store id or its error
 * (case-insensitive); pages follow the stores' order (keyset on their index).
 * Read-only: the rows are as the batch writer last wrote them.
 */
import type { Database, Statement } from 'better-sqlite3';

import type { ImageStatus, StoreStatus } from '../../types.js';
import type { StorePage, StoreRow } from '../../shared/api-shapes.js';

export type StoreFilter = {
  /** Part of a store id or of its error; '' for every store. */
  readonly search: string;
  readonly status?: StoreStatus | undefined;
  /** Only stores after this index (the `next_after` of the page before). */
  readonly after?: number | undefined;
  readonly limit: number;
};

type Row = { idx: number; store_id: string; status: StoreStatus; error: string | null };

export class StoreQuery {
  readonly #db: Database;
  readonly #imageCounts: Statement;

  constructor(db: Database) {
    this.#db = db;
    this.#imageCounts = db.prepare(`
      SELECT store_idx, status, COUNT(*) AS n FROM images
      WHERE job_id = ? AND store_idx IN (SELECT value FROM json_each(?))
      GROUP BY store_idx, status`);
  }

  page(jobId: number, filter: StoreFilter): StorePage {
    const where = ['job_id = @job'];
    const params: Record<string, string | number> = { job: jobId };
    if (filter.status !== undefined) {
      where.push('status = @status');
      params.status = filter.status;
    }
    const search = filter.search.trim();
    if (search !== '') {
      // LIKE is case-insensitive for ASCII; its wildcards in the text are taken literally.
      where.push(`(store_id LIKE @like ESCAPE '\\' OR error LIKE @like ESCAPE '\\')`);
      params.like = `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    }
    // Built from fixed fragments only; every value is a bound parameter.
    const matching = where.join(' AND ');
    const { total } = this.#db
      .prepare(`SELECT COUNT(*) AS total FROM stores WHERE ${matching}`)
      .get(params) as { total: number };
    const rows = this.#db
      .prepare(
        `SELECT idx, store_id, status, error FROM stores
         WHERE ${matching} AND idx > @after ORDER BY idx LIMIT @limit`,
      )
      .all({ ...params, after: filter.after ?? -1, limit: filter.limit + 1 }) as Row[];
    const shown = rows.slice(0, filter.limit);
    const counts = this.#counts(
      jobId,
      shown.map((row) => row.idx),
    );
    return {
      total,
      stores: shown.map((row): StoreRow => ({
        index: row.idx,
        store_id: row.store_id,
        status: row.status,
        ...(row.error === null ? {} : { error: row.error }),
        counts: counts.get(row.idx) ?? { images: 0, done: 0, failed: 0, skipped: 0, pending: 0 },
      })),
      next_after: rows.length > filter.limit ? (shown.at(-1)?.idx ?? null) : null,
    };
  }

  #counts(jobId: number, indexes: readonly number[]): Map<number, StoreRow['counts']> {
    const counts = new Map<number, Record<ImageStatus | 'images', number>>();
    if (indexes.length === 0) return counts;
    const rows = this.#imageCounts.all(jobId, JSON.stringify(indexes)) as {
      store_idx: number;
      status: ImageStatus;
      n: number;
    }[];
    for (const { store_idx: idx, status, n } of rows) {
      const entry = counts.get(idx) ?? { images: 0, done: 0, failed: 0, skipped: 0, pending: 0 };
      entry[status] = n;
      entry.images += n;
      counts.set(idx, entry);
    }
    return counts;
  }
}
