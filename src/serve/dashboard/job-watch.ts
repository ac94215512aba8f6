/**
 * Follows one running job for the dashboard: JobState tells it every change
 * as it happens, and it hands them on as one `job` event per window of
 * `coalesceMs` — however many images ended in that window, a store's last
 * status and an image's last result win. Nothing is looked at while the job
 * is idle, and a 100k-image job makes a few events a second, not one per image.
 */
import type { JobDelta } from '../../shared/api-shapes.js';
import type { JobState, JournalEntry } from '../../results/job-state.js';

/** What the dashboard reads of a running job. */
export type WatchedJob = Pick<JobState, 'jobId' | 'status' | 'counts' | 'subscribe'>;

/** The changes of one job since the previous event: a `job` event but for its sample. */
export type JobChanges = Omit<JobDelta, 'sample'> & {
  /** Epoch ms of the last change (the job's end, for the changes that ended it). */
  readonly changedAt: number;
};

export class JobWatch {
  readonly #job: WatchedJob;
  readonly #coalesceMs: number;
  readonly #send: (changes: JobChanges) => void;
  readonly #stores = new Map<number, JobChanges['stores'][number]>();
  /** By `store:image`. */
  readonly #images = new Map<string, JobChanges['images'][number]>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #changedAt = 0;

  /** `send` gets the changes of each window; the last call is the one that ends the job. */
  constructor(job: WatchedJob, coalesceMs: number, send: (changes: JobChanges) => void) {
    this.#job = job;
    this.#coalesceMs = coalesceMs;
    this.#send = send;
    this.#unsubscribe = job.status === 'ongoing' ? job.subscribe(this.#add) : undefined;
  }

  /** The job ended (or the watch was closed): no change will come any more. */
  get ended(): boolean {
    return this.#unsubscribe === undefined;
  }

  /** Sends what waits now, without waiting for the window to close. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#stores.size > 0 || this.#images.size > 0) {
      const changes: JobChanges = {
        job_id: this.#job.jobId,
        status: this.#job.status,
        counts: this.#job.counts,
        updated_at: new Date(this.#changedAt).toISOString(),
        changedAt: this.#changedAt,
        stores: [...this.#stores.values()],
        images: [...this.#images.values()],
      };
      this.#stores.clear();
      this.#images.clear();
      this.#send(changes);
    }
    // An ended job changes no more (a retry takes it up as a new state): let it go.
    if (this.#job.status !== 'ongoing') this.close();
  }

  /** Stops following the job; what waits is dropped. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  readonly #add = (entry: JournalEntry): void => {
    this.#changedAt = Date.now();
    if (entry.t === 'store') {
      const { s, status, error } = entry;
      this.#stores.set(s, { s, status, ...(error === undefined ? {} : { error }) });
    } else {
      this.#images.set(`${entry.s}:${entry.i}`, { s: entry.s, i: entry.i, r: entry.r });
    }
    this.#timer ??= setTimeout(() => {
      this.flush();
    }, this.#coalesceMs).unref();
  };
}
