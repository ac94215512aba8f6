import { FINISHED_STORE_STATUSES, storeErrors } from '../shared/job-rules.js';
import { ImageTable } from './image-table.js';
import { JobUrls } from './job-urls.js';
import { UrlList } from '../utils/url-list.js';
import type { JobSummary, ResultsStream, StoreSummary } from './results-stream.js';
import { InputError } from '../utils/errors.js';
import { JobSnapshot, type SnapshotExtra, type StoreHead } from './snapshot.js';
import type { Counts, ImageResult, ImageUrls, JobInput, JobStatus } from '../types.js';
import type { ResultOptions } from '../types.js';
import type { ResultsDocument, StoreStatus, StoreTask } from '../types.js';

/** One change to a job's results, in the order it happened; replayable. */
export type JournalEntry =
  | { readonly t: 'image'; readonly s: number; readonly i: number; readonly r: ImageResult }
  | {
      readonly t: 'store';
      readonly s: number;
      readonly status: StoreStatus;
      readonly error?: string;
    };

/**
 * A store without its images, which are in the job's table from `first`
 * on. Its keys are in the order the document spells them: `images` holds
 * its place (and the count).
 */
type MutableStore = StoreHead & { status: StoreStatus; error?: string };

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
  /** Where each store's images start in `#images`, and (last) their total. */
  readonly #first: Uint32Array;
  readonly #images: ImageTable;
  /** Each store's count of changes: a snapshot's kept store texts are checked against it. */
  readonly #versions: Uint32Array;
  #counts: { done: number; failed: number; skipped: number; pending: number };
  /** Stores by status, kept current: the job's status is asked for often (every save, every poll). */
  readonly #storesBy: Record<StoreStatus, number> = {
    pending: 0,
    ongoing: 0,
    completed: 0,
    failed: 0,
    skipped: 0,
  };
  #bytesDone = 0;
  readonly #timeline: [number, number][][];
  /** Replaced, never changed in place: a listener that unsubscribes during a delivery misses nothing already under way. */
  #listeners: readonly JobStateListener[] = [];

  private constructor(
    header: Header,
    timeline: ResultsDocument['timeline'],
    stores: MutableStore[],
    urls: readonly ImageUrls[],
  ) {
    this.#header = header;
    this.#timeline = (timeline ?? []).map((run) => run.map(([t, n]) => [t, n]));
    this.#stores = stores;
    this.#first = new Uint32Array(stores.length + 1);
    stores.forEach((store, index) => {
      this.#first[index + 1] = (this.#first[index] as number) + store.images;
      this.#storesBy[store.status]++;
    });
    this.#images = ImageTable.pending(new JobUrls(urls));
    this.#versions = new Uint32Array(stores.length);
    this.#counts = { done: 0, failed: 0, skipped: 0, pending: this.#images.length };
  }

  /** A job that has not started: every store pending, every image pending. */
  static create(input: JobInput, jobId: string, options: ResultOptions, now: Date): JobState {
    const stores = input.stores.map(freshStore);
    const urls = input.stores.map((task) => task.urls);
    return new JobState(headerOf(input, jobId, options, now), undefined, stores, urls);
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
    const urls = input.stores.map((task) => task.urls);
    return new JobState(headerOf(input, jobId, options, now), undefined, stores, urls);
  }

  /** A job taken up again from its results document. */
  static fromDocument(document: ResultsDocument): JobState {
    const { stores, ...head } = document;
    const urls: UrlList[] = [];
    const heads = stores.map(({ images, ...store }): MutableStore => {
      urls.push(UrlList.of(images.map((image) => image.url)).seal());
      // Spread over the store: `images` keeps its place among the keys.
      return { ...store, images: images.length };
    });
    const { header, timeline } = recordedHeader(head);
    const state = new JobState(header, timeline, heads, urls);
    let at = 0;
    for (const store of stores) for (const image of store.images) state.#set(at++, image);
    return state;
  }

  /**
   * A job taken up again from its results file, read a store at a time
   * (the document of a 10M-image job would not fit in memory), with the
   * stores of its manifest: their URLs are kept once, in `input`, where the
   * file has the same ones.
   * @throws {InputError} `E_RESULTS_FILE` when the file's stores are not the manifest's.
   */
  static async fromStream(stream: ResultsStream, input: JobInput): Promise<JobState> {
    const heads = input.stores.map(freshStore);
    const urls = input.stores.map((task) => task.urls);
    // The head before a pass: its header and timeline are the file's, which a pass keeps.
    const { header, timeline } = recordedHeader(stream.head);
    const state = new JobState(header, timeline, heads, urls);
    let index = 0;
    for await (const { images, ...store } of stream.stores()) {
      const task = input.stores[index];
      if (task?.storeId !== store.store_id || task.urls.length !== images.length)
        throw notTheManifests(stream.path, index);
      state.#storesBy[(heads[index] as MutableStore).status]--;
      state.#storesBy[store.status]++;
      heads[index] = { ...store, images: images.length };
      const first = state.#first[index] as number;
      for (const [offset, image] of images.entries()) state.#set(first + offset, image);
      index++;
    }
    if (index !== heads.length) throw notTheManifests(stream.path, index);
    return state;
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
    return { store_id, status, error, images };
  }

  isStoreFinished(store: number): boolean {
    return FINISHED.has(this.#store(store).status);
  }

  /** Index of the first image still to do in a store (its length when none). */
  firstPending(store: number): number {
    const { images } = this.#store(store);
    const first = this.#first[store] as number;
    for (let index = 0; index < images; index++)
      if (this.#images.status(first + index) === 'pending') return index;
    return images;
  }

  get counts(): Counts {
    return {
      stores: this.#stores.length,
      images: this.#images.length,
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
    this.#set(this.#at(store, index), result);
    this.#bumped(store);
    if (result.status === 'done' || result.status === 'failed') this.#sample(Date.now());
    this.#changed({ t: 'image', s: store, i: index, r: result });
  }

  /** A run starts working on the job: its timeline begins here (see `ResultsDocument.timeline`). */
  startRun(now = Date.now()): void {
    this.#timeline.push([[now, this.#worked()]]);
  }

  #set(at: number, result: ImageResult): void {
    const images = this.#images;
    this.#counts[images.status(at)]--;
    this.#counts[result.status]++;
    this.#bytesDone -= images.bytes(at);
    images.set(at, result);
    this.#bytesDone += images.bytes(at);
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
    this.#bumped(store);
    if (error === undefined) delete target.error;
    else target.error = error;
    this.#changed({ t: 'store', s: store, status, ...(error === undefined ? {} : { error }) });
  }

  /** Fail-fast: a store that will not run (further) ends skipped, with its images. */
  skipStore(store: number): void {
    this.#reset(store, ['pending'], 'skipped');
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
      this.#reset(index, ['failed', 'skipped'], 'pending');
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
      this.#reset(index, ['failed', 'skipped'], 'pending');
      reopened++;
    });
    return reopened;
  }

  /** Records each image of `store` whose status is one of `from` as `to`, with its URL alone. */
  #reset(store: number, from: readonly string[], to: 'pending' | 'skipped'): void {
    const first = this.#first[store] as number;
    for (let index = 0; index < this.#store(store).images; index++) {
      const at = first + index;
      if (from.includes(this.#images.status(at)))
        this.recordImage(store, index, { url: this.#images.url(at), status: to });
    }
  }

  /** The URL of an image, or undefined when the job has no such image. */
  imageUrl(store: number, index: number): string | undefined {
    const at = this.#atOrUndefined(store, index);
    return at === undefined ? undefined : this.#images.url(at);
  }

  /** Whether an entry fits this job (a foreign or damaged journal may not). */
  canApply(entry: JournalEntry): boolean {
    const store = this.#stores[entry.s];
    if (!store) return false;
    // Lines come from a file: check what the types cannot promise.
    if (entry.t === 'store') return STORE_STATUSES.has(entry.status);
    const result = entry.r as Partial<ImageResult> | null | undefined;
    return (
      this.#atOrUndefined(entry.s, entry.i) !== undefined &&
      typeof result?.url === 'string' &&
      IMAGE_STATUSES.has(result.status)
    );
  }

  /** Replays a journal entry written by an earlier run (idempotent). */
  apply(entry: JournalEntry): void {
    if (entry.t === 'image') this.recordImage(entry.s, entry.i, entry.r);
    else this.setStoreStatus(entry.s, entry.status, entry.error);
  }

  /**
   * The job as it stands, for the results file: its header and stores as
   * they are now, and a copy of the image columns, so later changes leave
   * it as it is while it is written (see JobSnapshot).
   */
  snapshot(extra: SnapshotExtra = {}): JobSnapshot {
    return new JobSnapshot(
      this.#head(extra),
      this.#stores.map((store) => ({ ...store })),
      this.#first,
      this.#images.copy(),
      this.#versions.slice(),
    );
  }

  /** The whole document as it stands, as objects: for readers of whole results (a server's API, a library's report). */
  toDocument(extra: SnapshotExtra = {}): ResultsDocument {
    return this.snapshot(extra).toDocument();
  }

  /**
   * The job as `status` shows it: the header, and each store's images
   * counted rather than held, so a run's closing table of a million images
   * costs a few bytes a store instead of an object an image.
   */
  summary(extra: SnapshotExtra = {}): JobSummary {
    return {
      ...this.#head(extra),
      stores: this.#stores.map((store, index): StoreSummary => {
        const first = this.#first[index] as number;
        let done = 0;
        for (let image = first; image < first + store.images; image++)
          if (this.#images.status(image) === 'done') done++;
        const { store_id, status, error, images } = store;
        return { store_id, status, ...(error === undefined ? {} : { error }), images, done };
      }),
    };
  }

  #head(extra: SnapshotExtra): Omit<ResultsDocument, 'stores'> {
    const status = this.status;
    return {
      ...this.#header,
      ...extra,
      status,
      ...(status === 'failed' ? { error: storeErrors(this.#stores) } : {}),
      updated_at: new Date().toISOString(),
      counts: this.counts,
      ...(this.#timeline.length > 0 ? { timeline: this.#timeline.map((run) => [...run]) } : {}),
    };
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

  #store(store: number): MutableStore {
    const target = this.#stores[store];
    if (!target) throw new RangeError(`no store ${store} in job ${this.jobId}`);
    return target;
  }

  #at(store: number, index: number): number {
    const at = this.#atOrUndefined(store, index);
    if (at === undefined) throw new RangeError(`no image ${index} in store ${store}`);
    return at;
  }

  #atOrUndefined(store: number, index: number): number | undefined {
    const target = this.#stores[store];
    if (!target || !Number.isInteger(index) || index < 0 || index >= target.images) return;
    return (this.#first[store] as number) + index;
  }

  #bumped(store: number): void {
    this.#versions[store] = (this.#versions[store] as number) + 1;
  }

  #changed(entry: JournalEntry): void {
    for (const listener of this.#listeners) listener(entry);
  }
}

/** The header a results file's head records, and its timeline: the rest is the writer's to set afresh on every save. */
function recordedHeader(head: Omit<ResultsDocument, 'stores'>): {
  readonly header: Header;
  readonly timeline: ResultsDocument['timeline'];
} {
  const {
    status: _status,
    error: _error,
    counts: _counts,
    updated_at: _updated,
    writer: _writer,
    interrupted: _interrupted,
    finished_at: _finished,
    timeline,
    network: _network,
    ...header
  } = head;
  return { header, timeline };
}

function notTheManifests(path: string, store: number): InputError {
  return new InputError(
    'E_RESULTS_FILE',
    `${path} does not hold the stores of its manifest (store ${store + 1} differs): use --force to start over`,
  );
}

function headerOf(input: JobInput, jobId: string, options: ResultOptions, now: Date): Header {
  return {
    schema_version: 1,
    tool: 'imgjob',
    job_id: jobId,
    manifest_digest: input.digest,
    manifest_source: input.source,
    options,
    created_at: now.toISOString(),
  };
}

/** A store of a job that has not started: pending. */
function freshStore(task: StoreTask): MutableStore {
  return {
    store_id: task.storeId,
    status: 'pending',
    ...(task.visitTimes.length > 0 ? { visit_times: task.visitTimes } : {}),
    images: task.urls.length,
  };
}
