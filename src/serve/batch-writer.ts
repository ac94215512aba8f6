/**
 * Takes every change of the running jobs (JobState's journal entries) and
 * writes them to the database in batches: one transaction every
 * `intervalMs`, or at once when `maxBatch` changes wait. One commit per
 * image would cap a server at a few thousand images a second; one per batch
 * keeps the cost flat however many jobs run.
 *
 * What a `kill -9` can lose is the last batch not yet written: those images
 * are simply done again after the restart, the same as the images that were
 * in flight, so each image still ends with exactly one result.
 */
import type { JobState, JournalEntry } from '../results/job-state.js';
import type { JobChanges, JobRecords } from './job-records.js';

export type BatchWriterOptions = {
  /**
   * Longest a change waits before it is written.
   * @default 50
   */
  readonly intervalMs?: number | undefined;
  /**
   * Changes that trigger a write at once, whatever the time. Small enough
   * that one write holds the event loop for milliseconds, not a tenth of a
   * second (a job of refused stores makes thousands of changes a second;
   * in a 100k-store job 500 changes took up to ~100 ms to write).
   * @default 200
   */
  readonly maxBatch?: number | undefined;
  /**
   * Told when writes start to fail (once, not on every retry); the changes
   * stay queued and are tried again every `intervalMs`.
   */
  readonly onError?: ((error: unknown) => void) | undefined;
  /** Told when a write succeeds again after failures. */
  readonly onRecovered?: ((failedWrites: number) => void) | undefined;
  /** Told how long each successful write took (metrics). */
  readonly onSave?: ((ms: number) => void) | undefined;
};

export class BatchWriter {
  readonly #records: JobRecords;
  readonly #intervalMs: number;
  readonly #maxBatch: number;
  readonly #onError: (error: unknown) => void;
  readonly #onRecovered: (failedWrites: number) => void;
  readonly #onSave: ((ms: number) => void) | undefined;
  /** Changes waiting, per job, in the order they happened. */
  #pending = new Map<JobState, JournalEntry[]>();
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Writes failed in a row: retry on the timer only, not on every change. */
  #failures = 0;
  /** Callers of written(), told after the next successful write. */
  #waiters: (() => void)[] = [];
  /** The states recorded, each with the function that stops it. */
  readonly #watching = new Map<JobState, () => void>();
  #soon: NodeJS.Immediate | undefined;

  constructor(records: JobRecords, options: BatchWriterOptions = {}) {
    this.#records = records;
    this.#intervalMs = options.intervalMs ?? 50;
    this.#maxBatch = options.maxBatch ?? 200;
    this.#onError = options.onError ?? (() => undefined);
    this.#onRecovered = options.onRecovered ?? (() => undefined);
    this.#onSave = options.onSave;
  }

  /** Starts recording every change of `state`. */
  watch(state: JobState): void {
    this.unwatch(state);
    this.#watching.set(
      state,
      state.subscribe((entry) => {
        this.#add(state, entry);
      }),
    );
  }

  /** Stops recording `state`; changes already queued are still written. */
  unwatch(state: JobState): void {
    this.#watching.get(state)?.();
    this.#watching.delete(state);
  }

  /**
   * Resolves once every change queued so far is in the database. The write
   * happens soon, not at once: the jobs that end in the same turn of the
   * event loop share one transaction.
   */
  written(): Promise<void> {
    if (this.#size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      if (this.#soon !== undefined) return;
      this.#soon = setImmediate(() => {
        this.#soon = undefined;
        this.flush();
      });
    });
  }

  /** Writes every queued change now. Returns false when the write failed. */
  flush(): boolean {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#size === 0) {
      this.#wake();
      return true;
    }
    const changes: JobChanges[] = [...this.#pending].map(([state, entries]) => ({
      state,
      entries,
    }));
    const started = performance.now();
    try {
      this.#records.write(changes);
    } catch (error) {
      // One report per outage, not one every intervalMs.
      if (this.#failures++ === 0) this.#onError(error);
      this.#schedule();
      return false;
    }
    this.#onSave?.(performance.now() - started);
    if (this.#failures > 0) this.#onRecovered(this.#failures);
    this.#failures = 0;
    this.#pending = new Map();
    this.#size = 0;
    this.#wake();
    return true;
  }

  /** Whether the last write failed (the changes wait for the next try). */
  get failing(): boolean {
    return this.#failures > 0;
  }

  /** Changes waiting to be written. */
  get size(): number {
    return this.#size;
  }

  #add(state: JobState, entry: JournalEntry): void {
    let entries = this.#pending.get(state);
    if (entries === undefined) {
      entries = [];
      this.#pending.set(state, entries);
    }
    entries.push(entry);
    this.#size++;
    if (this.#size >= this.#maxBatch && this.#failures === 0) this.flush();
    else this.#schedule();
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  #schedule(): void {
    // Never what keeps the process alive: close() flushes for itself.
    this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs).unref();
  }
}
