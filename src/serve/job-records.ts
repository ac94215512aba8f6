/**
 * The rows of the serve database: a job, its stores and its images, written
 * the way JobState records them. Every statement is prepared once; every
 * write is one transaction, so a crash leaves either all of a batch or none.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gunzipSync } from 'node:zlib';

import type { Database, Statement } from 'better-sqlite3';

import { JobState, type JournalEntry } from '../results/job-state.js';
import { storeErrors, storeErrorText } from '../shared/job-rules.js';
import { canonicalManifest, parseManifest } from '../input/manifest.js';
import { createTimeSlice } from '../engine/time-slice.js';
import { jsonString } from '../utils/json-string.js';
import type {
  Counts,
  ImageResult,
  JobInput,
  JobStatus,
  ResultOptions,
  ResultsDocument,
  StatusDocument,
  StoreResult,
  StoreStatus,
  StoreTask,
} from '../types.js';
import type { JobSummary } from '../shared/api-shapes.js';

export type { JobSummary };

/** The Retail Pulse status document, with the job's counts beside its three fields. */
export type JobStatusDocument = StatusDocument & { readonly counts: Counts };

/** Changes of one job to write together. */
export type JobChanges = { readonly state: JobState; readonly entries: readonly JournalEntry[] };

type JobRow = {
  id: number;
  status: JobStatus;
  manifest_source: string;
  manifest_digest: string;
  options: string;
  store_count: number;
  image_count: number;
  done: number;
  failed: number;
  skipped: number;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
};
type SummaryRow = Omit<JobRow, 'manifest_source' | 'manifest_digest' | 'options'>;
type StoreRow = {
  idx: number;
  store_id: string;
  status: StoreStatus;
  error: string | null;
  visit_times: string | null;
};
type ImageRow = {
  store_idx: number;
  url: string;
  status: ImageResult['status'];
  result: string | null;
};

export class JobRecords {
  readonly #db: Database;
  readonly #sql: ReturnType<typeof prepare>;

  constructor(db: Database) {
    this.#db = db;
    this.#sql = prepare(db);
  }

  /**
   * Records a new job — the job, every store and every image — and returns
   * its state (its id is the row's). The rows go in as many stores per
   * transaction as take about `WRITE_MS`, with `turn()` awaited between
   * them, and the state is built in slices of time, so that taking a
   * 100k-store job in never holds other clients for long. The job
   * is not handed out (not in the server's live jobs, its id unknown to the
   * client) until its last rows are in; a job whose rows are not all there —
   * the server stopped in between — was never accepted, and `isComplete`
   * tells it at the next start. A failure removes what was written.
   * @param manifest The job's canonical manifest text, in pieces, when the caller spelt it already.
   */
  async create(
    input: JobInput,
    options: ResultOptions,
    now: Date,
    turn: () => Promise<void> = () => Promise.resolve(),
    manifest: readonly string[] = [canonicalManifest(input)],
  ): Promise<JobState> {
    const time = now.toISOString();
    // Compressed on libuv's threads: 16 MB of text took ~100 ms to insert, on the event loop.
    const packed = await gzipPieces(manifest);
    const id = this.#db.transaction(
      () =>
        this.#sql.insertJob.run({
          manifest: packed,
          manifest_source: input.source,
          manifest_digest: input.digest,
          options: JSON.stringify(options),
          store_count: input.stores.length,
          image_count: input.imageCount,
          created_at: time,
        }).lastInsertRowid,
    )();
    try {
      let size = FIRST_WRITE_STORES;
      for (let first = 0; first < input.stores.length;) {
        await turn();
        const started = performance.now();
        const tasks = input.stores.slice(first, first + size);
        // Every row in one statement per table, SQLite reading them from JSON:
        // single-row inserts cost 4x as much, on the event loop.
        this.#db.transaction(() => {
          this.#sql.insertStores.run(id, first, storeRowsJson(tasks));
          this.#sql.insertImages.run(id, first, imageRowsJson(tasks));
        })();
        size = nextWriteSize(tasks.length, performance.now() - started);
        first += tasks.length;
      }
      await turn();
      const slice = createTimeSlice(WRITE_MS);
      const state = await JobState.createInSlices(input, String(id), options, now, () =>
        slice.turn(),
      );
      await turn();
      // A job without stores (count 0) is complete the moment it exists.
      this.#updateJob(state, time);
      return state;
    } catch (error) {
      this.remove(Number(id));
      throw error;
    }
  }

  /** Whether every store and image row of a job is there (see `create`). */
  isComplete(id: number): boolean {
    const row = this.#sql.completeness.get(id, id, id) as { complete: number } | undefined;
    return row?.complete === 1;
  }

  /** Deletes a job and its rows; best effort (the disk may be full). */
  remove(id: number): void {
    try {
      this.#db.transaction(() => {
        this.#sql.deleteImages.run(id);
        this.#sql.deleteStores.run(id);
        this.#sql.deleteJob.run(id);
      })();
    } catch {
      // Left for the next start, which finds the job incomplete.
    }
  }

  /** Writes the changes of several jobs in one transaction. */
  write(changes: readonly JobChanges[]): void {
    if (changes.length === 0) return;
    const time = new Date().toISOString();
    this.#db.transaction(() => {
      for (const { state, entries } of changes) {
        const job = state.jobId;
        // A store that starts and ends within one batch (every refused store
        // does) is written once, as it ended: one UPDATE of three saved.
        const lastOfStore = new Map<number, JournalEntry>();
        for (const entry of entries) if (entry.t === 'store') lastOfStore.set(entry.s, entry);
        for (const entry of entries) {
          if (entry.t === 'image') {
            this.#sql.updateImage.run(entry.r.status, resultJson(entry.r), job, entry.s, entry.i);
          } else if (lastOfStore.get(entry.s) === entry) {
            this.#sql.updateStore.run(entry.status, entry.error ?? null, job, entry.s);
          }
        }
        this.#updateJob(state, time);
      }
    })();
  }

  /** Ids of the jobs that had not finished, oldest first. */
  unfinished(): number[] {
    return (this.#sql.unfinished.all() as { id: number }[]).map((row) => row.id);
  }

  /**
   * A recorded job taken up again: its input rebuilt from the manifest it
   * was submitted with, its state from its rows.
   * @throws {ManifestError} when the manifest no longer validates (a newer imgjob with stricter rules).
   */
  load(id: number): { readonly input: JobInput; readonly state: JobState } | undefined {
    const row = this.#job(id);
    if (row === undefined) return undefined;
    const { manifest } = this.#sql.manifest.get(id) as { manifest: string | Buffer };
    // Text as written before manifests were stored compressed.
    const text = typeof manifest === 'string' ? manifest : gunzipSync(manifest);
    const input = parseManifest(text, row.manifest_source);
    return { input, state: JobState.fromDocument(this.#document(row)) };
  }

  /** The results document of a recorded job, as the CLI's results file holds it. */
  document(id: number): ResultsDocument | undefined {
    const row = this.#job(id);
    if (row === undefined) return undefined;
    const document = JobState.fromDocument(this.#document(row)).toDocument(
      row.finished_at === null ? {} : { finished_at: row.finished_at },
    );
    return { ...document, updated_at: row.updated_at };
  }

  /** The Retail Pulse status document of a recorded job, with its counts. */
  status(id: number): JobStatusDocument | undefined {
    const row = this.#sql.jobStatus.get(id) as SummaryRow | undefined;
    if (row === undefined) return undefined;
    const counts = countsOf(row);
    if (row.status !== 'failed') return { status: row.status, job_id: String(id), counts };
    const failed = this.#sql.failedStores.all(id) as { store_id: string; error: string | null }[];
    return {
      status: row.status,
      job_id: String(id),
      error: failed.map((store) => ({
        store_id: store.store_id,
        error: storeErrorText(store.error),
      })),
      counts,
    };
  }

  /**
   * Writes one page and takes it back: tells whether the database takes
   * writes again (after a full disk) when no job is writing anything.
   * @throws what the write threw.
   */
  probeWrite(): void {
    const version = this.#db.pragma('user_version', { simple: true }) as number;
    this.#db.transaction(() => {
      this.#db.pragma(`user_version = ${version}`);
    })();
  }

  /** The most recent jobs, newest first; `before` pages back from an id. */
  /** Jobs by status, over the whole database (metrics). */
  countByStatus(): Record<string, number> {
    const rows = this.#sql.countByStatus.all() as { status: string; count: number }[];
    return Object.fromEntries(rows.map((row) => [row.status, row.count]));
  }

  list(limit: number, before?: number): JobSummary[] {
    const rows = this.#sql.list.all(before ?? Number.MAX_SAFE_INTEGER, limit) as SummaryRow[];
    return rows.map((row) => ({
      job_id: String(row.id),
      status: row.status,
      created_at: row.created_at,
      updated_at: row.updated_at,
      ...(row.finished_at === null ? {} : { finished_at: row.finished_at }),
      counts: countsOf(row),
    }));
  }

  #updateJob(state: JobState, time: string): void {
    const { done, failed, skipped } = state.counts;
    const status = state.status;
    const finished = status === 'ongoing' ? null : time;
    this.#sql.updateJob.run(status, done, failed, skipped, time, finished, state.jobId);
  }

  #job(id: number): JobRow | undefined {
    return this.#sql.job.get(id) as JobRow | undefined;
  }

  /** The document JobState takes up: header from the job row, results from the others. */
  #document(row: JobRow): ResultsDocument {
    const stores = (this.#sql.stores.all(row.id) as StoreRow[]).map(
      (store): StoreResult & { images: ImageResult[] } => ({
        store_id: store.store_id,
        status: store.status,
        ...(store.error === null ? {} : { error: store.error }),
        ...(store.visit_times === null
          ? {}
          : { visit_times: JSON.parse(store.visit_times) as string[] }),
        images: [],
      }),
    );
    for (const image of this.#sql.images.iterate(row.id) as IterableIterator<ImageRow>) {
      const result =
        image.result === null
          ? { url: image.url, status: image.status }
          : { url: image.url, ...(JSON.parse(image.result) as Omit<ImageResult, 'url'>) };
      stores[image.store_idx]?.images.push(result as ImageResult);
    }
    return {
      schema_version: 1,
      tool: 'imgjob',
      job_id: String(row.id),
      status: row.status,
      ...(row.status === 'failed' ? { error: storeErrors(stores) } : {}),
      manifest_digest: row.manifest_digest,
      manifest_source: row.manifest_source,
      created_at: row.created_at,
      updated_at: row.updated_at,
      options: JSON.parse(row.options) as ResultOptions,
      counts: countsOf(row),
      stores,
    };
  }
}

/**
 * The gzip of a text given in pieces, compressed on libuv's threads a piece
 * at a time: the event loop never turns 16 MB of text into bytes at once.
 */
async function gzipPieces(pieces: readonly string[]): Promise<Buffer> {
  const packed: Buffer[] = [];
  await pipeline(Readable.from(pieces), createGzip(), async (gzipped: AsyncIterable<Buffer>) => {
    for await (const chunk of gzipped) packed.push(chunk);
  });
  return Buffer.concat(packed);
}

/** What the `result` column holds: a done or failed image's result without its URL (the row has it). */
function resultJson(result: ImageResult): string | null {
  if (result.status !== 'done' && result.status !== 'failed') return null;
  const { url: _url, ...rest } = result;
  return JSON.stringify(rest);
}

/**
 * `[[store_id, visit_times JSON or null], …]`, as `insertStores` reads it.
 * Spelt by hand, as the two below: JSON.stringify of an array a store (and
 * a copy of its URLs) made most of the garbage of a 100k-store submit.
 */
function storeRowsJson(tasks: readonly StoreTask[]): string {
  let text = '[';
  for (let i = 0; i < tasks.length; i++) {
    const { storeId, visitTimes } = tasks[i] as StoreTask;
    const times = visitTimes.length > 0 ? jsonString(JSON.stringify(visitTimes)) : 'null';
    text += `${i === 0 ? '' : ','}[${jsonString(storeId)},${times}]`;
  }
  return `${text}]`;
}

/** `[[url, …] per store]`, as `insertImages` reads it. */
function imageRowsJson(tasks: readonly StoreTask[]): string {
  let text = '[';
  for (let i = 0; i < tasks.length; i++) {
    const { urls } = tasks[i] as StoreTask;
    text += i === 0 ? '[' : ',[';
    for (let k = 0; k < urls.length; k++) {
      text += `${k === 0 ? '' : ','}${jsonString(urls.at(k) as string)}`;
    }
    text += ']';
  }
  return `${text}]`;
}

/** About how long one transaction of `create` holds the event loop. */
const WRITE_MS = 20;
/** Stores in `create`'s first transaction; the next ones are sized by how long it took. */
const FIRST_WRITE_STORES = 500;

/** Stores for the next transaction: about WRITE_MS worth at the pace of the last one, at most twice as many. */
function nextWriteSize(stores: number, ms: number): number {
  const paced = Math.floor((stores * WRITE_MS) / Math.max(ms, 1));
  return Math.max(1, Math.min(stores * 2, paced));
}

function countsOf(row: SummaryRow): Counts {
  const { store_count: stores, image_count: images, done, failed, skipped } = row;
  return { stores, images, done, failed, skipped, pending: images - done - failed - skipped };
}

function prepare(db: Database) {
  const statement = (sql: string): Statement => db.prepare(sql);
  return {
    insertJob: statement(`
      INSERT INTO jobs (status, manifest, manifest_source, manifest_digest, options,
                        store_count, image_count, created_at, updated_at)
      VALUES ('ongoing', @manifest, @manifest_source, @manifest_digest, @options,
              @store_count, @image_count, @created_at, @created_at)`),
    // Job id, index of the first store, [[store_id, visit_times JSON or null], …] in store order.
    insertStores: statement(`
      INSERT INTO stores (job_id, idx, store_id, status, visit_times)
      SELECT ?, ? + store.key, json_extract(store.value, '$[0]'), 'pending', json_extract(store.value, '$[1]')
      FROM json_each(?) AS store ORDER BY store.key`),
    // Job id, index of the first store, [[url, …] per store], in store order.
    insertImages: statement(`
      INSERT INTO images (job_id, store_idx, idx, url, status)
      SELECT ?, ? + store.key, image.key, image.value, 'pending'
      FROM json_each(?) AS store, json_each(store.value) AS image
      ORDER BY store.key, image.key`),
    completeness: statement(`
      SELECT (SELECT COUNT(*) FROM stores WHERE job_id = ?) = store_count
         AND (SELECT COUNT(*) FROM images WHERE job_id = ?) = image_count AS complete
      FROM jobs WHERE id = ?`),
    deleteImages: statement(`DELETE FROM images WHERE job_id = ?`),
    deleteStores: statement(`DELETE FROM stores WHERE job_id = ?`),
    deleteJob: statement(`DELETE FROM jobs WHERE id = ?`),
    updateImage: statement(
      `UPDATE images SET status = ?, result = ? WHERE job_id = ? AND store_idx = ? AND idx = ?`,
    ),
    updateStore: statement(`UPDATE stores SET status = ?, error = ? WHERE job_id = ? AND idx = ?`),
    updateJob: statement(`
      UPDATE jobs SET status = ?, done = ?, failed = ?, skipped = ?, updated_at = ?,
                      finished_at = COALESCE(finished_at, ?)
      WHERE id = ?`),
    unfinished: statement(`SELECT id FROM jobs WHERE status = 'ongoing' ORDER BY id`),
    countByStatus: statement(`SELECT status, COUNT(*) AS count FROM jobs GROUP BY status`),
    job: statement(`
      SELECT id, status, manifest_source, manifest_digest, options, store_count, image_count,
             done, failed, skipped, created_at, updated_at, finished_at
      FROM jobs WHERE id = ?`),
    manifest: statement(`SELECT manifest FROM jobs WHERE id = ?`),
    jobStatus: statement(`
      SELECT id, status, store_count, image_count, done, failed, skipped,
             created_at, updated_at, finished_at
      FROM jobs WHERE id = ?`),
    failedStores: statement(
      `SELECT store_id, error FROM stores WHERE job_id = ? AND status = 'failed' ORDER BY idx`,
    ),
    stores: statement(
      `SELECT idx, store_id, status, error, visit_times FROM stores WHERE job_id = ? ORDER BY idx`,
    ),
    images: statement(
      `SELECT store_idx, url, status, result FROM images WHERE job_id = ? ORDER BY store_idx, idx`,
    ),
    // Not the manifest: a list of a thousand big jobs would read every one of them.
    list: statement(`
      SELECT id, status, store_count, image_count, done, failed, skipped,
             created_at, updated_at, finished_at
      FROM jobs WHERE id < ? ORDER BY id DESC LIMIT ?`),
  };
}
