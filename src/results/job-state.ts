import { FINISHED_STORE_STATUSES, storeErrors } from '../shared/job-rules.js';
import type {
  Counts,
  ImageResult,
  JobInput,
  JobStatus,
  ResultOptions,
  ResultsDocument,
  StoreStatus,
  StoreTask,
} from '../types.js';

/** One change to a job's results, in the order it happened; replayable. */
export type JournalEntry =
  | { readonly t: 'image'; readonly s: number; readonly i: number; readonly r: ImageResult }
  | {
      readonly t: 'store';
      readonly s: number;
      readonly status: StoreStatus;
      readonly error?: string;
    };

type MutableStore = {
  store_id: string;
  status: StoreStatus;
  error?: string;
  visit_times?: readonly string[];
  images: ImageResult[];
};

type Header = Omit<
  ResultsDocument,
  | 'status'
  | 'error'
  | 'counts'
  | 'stores'
  | 'updated_at'
  | 'writer'
  | 'interrupted'
  | 'finished_at'
  | 'timeline'
  | 'network'
>;

/** Closer samples of a run replace its last one: about one a second. */
const SAMPLE_MS = 1000;
/** Past this many samples, a run keeps every other one: a week-long run stays a few KB. */
const MAX_RUN_SAMPLES = 1000;

const FINISHED = FINISHED_STORE_STATUSES;
/** Every valid status, to check what comes from a file. */
export const STORE_STATUSES: ReadonlySet<unknown> = new Set(['pending', 'ongoing', ...FINISHED]);
export const IMAGE_STATUSES: ReadonlySet<unknown> = new Set([
  'pending',
  'done',
  'failed',
  'skipped',
]);

/** Told of every change to a job's results, in the order they happen. */
export type JobStateListener = (entry: JournalEntry) => void;

/**
 * The single owner of one job's results while it runs. Every change goes
 * through a method here, which keeps the counts current and hands the change
 * to every subscriber (the journal, the server's database, the dashboard),
 * so memory, disk and progress never disagree.
 */
export class JobState {
  readonly #header: Header;
  readonly #stores: MutableStore[];
  #counts: { done: number; failed: number; skipped: number; pending: number };
  /** Stores by status, kept current: the job's status is asked for often (every save, every poll). */
  readonly #storesBy: Record<StoreStatus, number> = {
    pending: 0,
    ongoing: 0,
    completed: 0,
    failed: 0,
    skipped: 0,
  };
  #bytesDone: number;
  readonly #timeline: [number, number][][];
  /** Replaced, never changed in place: a listener that unsubscribes during a delivery misses nothing already under way. */
  #listeners: readonly JobStateListener[] = [];

  /** @param fresh The stores of a job that has not started, built by `createInSlices`: taken as they are. */
  private constructor(document: ResultsDocument, fresh?: FreshStores) {
    // Run-specific fields are the writer's to set afresh on every save.
    const {
      status,
      error,
      counts,
      stores,
      updated_at,
      writer,
      interrupted,
      finished_at,
      timeline,
      network,
      ...header
    } = document;
    this.#header = header;
    this.#timeline = (timeline ?? []).map((run) => run.map(([t, n]) => [t, n]));
    this.#bytesDone = 0;
    if (fresh !== undefined) {
      this.#stores = fresh.stores;
      this.#counts = { done: 0, failed: 0, skipped: 0, pending: fresh.images };
      this.#storesBy.pending = fresh.stores.length;
      return;
    }
    this.#stores = stores.map((store) => ({ ...store, images: [...store.images] }));
    this.#counts = countImages(this.#stores);
    for (const store of this.#stores) this.#storesBy[store.status]++;
    for (const store of this.#stores)
      for (const image of store.images) this.#bytesDone += bytesOf(image);
  }

  /** A job that has not started: every store pending, every image pending. */
  static create(input: JobInput, jobId: string, options: ResultOptions, now: Date): JobState {
    return new JobState({
      ...headerOf(input, jobId, options, now),
      stores: input.stores.map(freshStore),
    });
  }

  /**
   * As `create`, with `turn()` awaited now and then: a server builds the
   * state of a 100k-store job without holding other clients meanwhile.
   */
  static async createInSlices(
    input: JobInput,
    jobId: string,
    options: ResultOptions,
    now: Date,
    turn: () => Promise<void> | undefined,
  ): Promise<JobState> {
    const stores: MutableStore[] = [];
    for (const task of input.stores) {
      // Awaited only when it yields: a promise per store would cost more than the store.
      const next = turn();
      if (next !== undefined) await next;
      stores.push(freshStore(task));
    }
    return new JobState(
      { ...headerOf(input, jobId, options, now), stores: [] },
      { stores, images: input.imageCount },
    );
  }

  /** A job taken up again from its results document. */
  static fromDocument(document: ResultsDocument): JobState {
    return new JobState(document);
  }

  get jobId(): string {
    return this.#header.job_id;
  }

  storeStatus(store: number): StoreStatus {
    return this.#store(store).status;
  }

  /** A store's id, status, error and image count (for its log line). */
  storeView(store: number): {
    readonly store_id: string;
    readonly status: StoreStatus;
    readonly error: string | undefined;
    readonly images: number;
  } {
    const { store_id, status, error, images } = this.#store(store);
    return { store_id, status, error, images: images.length };
  }

  isStoreFinished(store: number): boolean {
    return FINISHED.has(this.#store(store).status);
  }

  /** Index of the first image still to do in a store (its length when none). */
  firstPending(store: number): number {
    const images = this.#store(store).images;
    const index = images.findIndex((image) => image.status === 'pending');
    return index === -1 ? images.length : index;
  }

  get counts(): Counts {
    return {
      stores: this.#stores.length,
      images: this.#counts.done + this.#counts.failed + this.#counts.skipped + this.#counts.pending,
      ...this.#counts,
    };
  }

  /** Stores by status, kept current (metrics read it at every scrape). */
  get storeCounts(): Readonly<Record<StoreStatus, number>> {
    return this.#storesBy;
  }

  /** Bytes downloaded for the images done so far (for rates in progress). */
  get bytesDone(): number {
    return this.#bytesDone;
  }

  get status(): JobStatus {
    const by = this.#storesBy;
    if (by.pending > 0 || by.ongoing > 0) return 'ongoing';
    return by.failed > 0 ? 'failed' : 'completed';
  }

  recordImage(store: number, index: number, result: ImageResult): void {
    const images = this.#store(store).images;
    const previous = images[index];
    if (!previous) throw new RangeError(`no image ${index} in store ${store}`);
    this.#counts[previous.status]--;
    this.#counts[result.status]++;
    this.#bytesDone += bytesOf(result) - bytesOf(previous);
    images[index] = result;
    if (result.status === 'done' || result.status === 'failed') this.#sample(Date.now());
    this.#changed({ t: 'image', s: store, i: index, r: result });
  }

  /** A run starts working on the job: its timeline begins here (see `ResultsDocument.timeline`). */
  startRun(now = Date.now()): void {
    this.#timeline.push([[now, this.#worked()]]);
  }

  #worked(): number {
    return this.#counts.done + this.#counts.failed;
  }

  #sample(now: number): void {
    const run = this.#timeline.at(-1);
    if (run === undefined) return;
    const point: [number, number] = [now, this.#worked()];
    const before = run.at(-2);
    if (run.length > 1 && before !== undefined && now - before[0] < SAMPLE_MS)
      run[run.length - 1] = point;
    else run.push(point);
    if (run.length > MAX_RUN_SAMPLES) {
      const last = run.at(-1) as [number, number];
      const kept = run.filter((_, i) => i % 2 === 0);
      if (kept.at(-1) !== last) kept.push(last);
      run.splice(0, run.length, ...kept);
    }
  }

  setStoreStatus(store: number, status: StoreStatus, error?: string): void {
    const target = this.#store(store);
    this.#storesBy[target.status]--;
    this.#storesBy[status]++;
    target.status = status;
    if (error === undefined) delete target.error;
    else target.error = error;
    this.#changed({ t: 'store', s: store, status, ...(error === undefined ? {} : { error }) });
  }

  /** Fail-fast: a store that will not run (further) ends skipped, with its images. */
  skipStore(store: number): void {
    this.#store(store).images.forEach((image, index) => {
      if (image.status === 'pending')
        this.recordImage(store, index, { url: image.url, status: 'skipped' });
    });
    this.setStoreStatus(store, 'skipped');
  }

  /**
   * Before resuming: a store that has not recorded its own end keeps only its
   * `done` images. Its `failed` and `skipped` ones are final only together
   * with the store's status, journaled one line after the other; a kill
   * between those lines leaves them without it. They go back to pending, so
   * the store pipeline decides them again — else the store would resume past
   * its failed image and end `completed`. A store left `ongoing` is `pending`
   * again until this run starts it, so running counts are this run's.
   */
  reopenUnfinishedStores(): void {
    this.#stores.forEach((store, index) => {
      if (FINISHED.has(store.status)) return;
      // Running in the run that stopped, not in this one: it waits for a slot like any other.
      if (store.status === 'ongoing') this.setStoreStatus(index, 'pending');
      store.images.forEach((image, imageIndex) => {
        if (image.status === 'failed' || image.status === 'skipped') {
          this.recordImage(index, imageIndex, { url: image.url, status: 'pending' });
        }
      });
    });
  }

  /**
   * `--retry-failed`: every failed store, and every store fail-fast skipped,
   * is taken up again from its first image without a `done` result; done
   * results stay. The store goes back to pending before its images, so a
   * kill in between leaves an unfinished store, which resuming reopens.
   */
  reopenFailedStores(): number {
    let reopened = 0;
    this.#stores.forEach((store, index) => {
      if (store.status !== 'failed' && store.status !== 'skipped') return;
      this.setStoreStatus(index, 'pending');
      store.images.forEach((image, imageIndex) => {
        if (image.status === 'failed' || image.status === 'skipped') {
          this.recordImage(index, imageIndex, { url: image.url, status: 'pending' });
        }
      });
      reopened++;
    });
    return reopened;
  }

  /** The URL of an image, or undefined when the job has no such image. */
  imageUrl(store: number, index: number): string | undefined {
    return this.#stores[store]?.images[index]?.url;
  }

  /** Whether an entry fits this job (a foreign or damaged journal may not). */
  canApply(entry: JournalEntry): boolean {
    const store = this.#stores[entry.s];
    if (!store) return false;
    // Lines come from a file: check what the types cannot promise.
    if (entry.t === 'store') return STORE_STATUSES.has(entry.status);
    const result = entry.r as Partial<ImageResult> | null | undefined;
    return (
      store.images[entry.i] !== undefined &&
      typeof result?.url === 'string' &&
      IMAGE_STATUSES.has(result.status)
    );
  }

  /** Replays a journal entry written by an earlier run (idempotent). */
  apply(entry: JournalEntry): void {
    if (entry.t === 'image') this.recordImage(entry.s, entry.i, entry.r);
    else this.setStoreStatus(entry.s, entry.status, entry.error);
  }

  /** The whole document as it stands, for the results file. */
  toDocument(
    extra: Partial<
      Pick<ResultsDocument, 'writer' | 'interrupted' | 'finished_at' | 'queue' | 'network'>
    > = {},
  ): ResultsDocument {
    const status = this.status;
    return {
      ...this.#header,
      ...extra,
      status,
      ...(status === 'failed' ? { error: storeErrors(this.#stores) } : {}),
      updated_at: new Date().toISOString(),
      counts: this.counts,
      ...(this.#timeline.length > 0 ? { timeline: this.#timeline.map((run) => [...run]) } : {}),
      stores: this.#stores,
    };
  }

  #store(store: number): MutableStore {
    const target = this.#stores[store];
    if (!target) throw new RangeError(`no store ${store} in job ${this.jobId}`);
    return target;
  }

  /**
   * Delivers every later change to `listener`, after the listeners already
   * subscribed; the returned function stops it (calling it twice is harmless).
   */
  subscribe(listener: JobStateListener): () => void {
    // Its own function: the same listener subscribed twice is two subscriptions.
    const subscription: JobStateListener = (entry) => {
      listener(entry);
    };
    this.#listeners = [...this.#listeners, subscription];
    return () => {
      this.#listeners = this.#listeners.filter((each) => each !== subscription);
    };
  }

  #changed(entry: JournalEntry): void {
    for (const listener of this.#listeners) listener(entry);
  }
}

/** A job's stores before it starts, and how many images they hold. */
type FreshStores = { readonly stores: MutableStore[]; readonly images: number };

function headerOf(
  input: JobInput,
  jobId: string,
  options: ResultOptions,
  now: Date,
): Omit<ResultsDocument, 'stores'> {
  const time = now.toISOString();
  return {
    schema_version: 1,
    tool: 'imgjob',
    job_id: jobId,
    status: 'ongoing',
    manifest_digest: input.digest,
    manifest_source: input.source,
    options,
    created_at: time,
    updated_at: time,
    counts: { stores: 0, images: 0, done: 0, failed: 0, skipped: 0, pending: 0 },
  };
}

/** A store of a job that has not started: pending, every image pending. */
function freshStore(task: StoreTask): MutableStore {
  return {
    store_id: task.storeId,
    status: 'pending',
    ...(task.visitTimes.length > 0 ? { visit_times: task.visitTimes } : {}),
    images: task.images.map((image) => ({ url: image.url, status: 'pending' })),
  };
}

function bytesOf(image: ImageResult): number {
  return image.status === 'done' ? image.bytes : 0;
}

function countImages(stores: readonly MutableStore[]): {
  done: number;
  failed: number;
  skipped: number;
  pending: number;
} {
  const counts = { done: 0, failed: 0, skipped: 0, pending: 0 };
  for (const store of stores) for (const image of store.images) counts[image.status]++;
  return counts;
}
