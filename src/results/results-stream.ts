/**
 * A results file read store by store, with its journals replayed, so that
 * `status`, `report` and `--resume` work at any size: a job of more than
 * 5,000 images is written one store per line (snapshot.ts), and a reader
 * holds one store at a time plus the journal lines not yet in the snapshot.
 * A file in another form (indented, or rewritten by a tool) is parsed whole,
 * up to `WHOLE_FILE_MAX` bytes.
 */
import { readFileSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

import { describeFileError, InputError } from '../utils/errors.js';
import { fileLines, occurrences } from './file-lines.js';
import { jobStatusOf, storeErrorText } from '../shared/job-rules.js';
import { IMAGE_STATUSES, STORE_STATUSES } from './job-state.js';
import { entryOf, parseJournal, type JournalLine } from './journal.js';
import { journalPathOf, oldJournalPathOf } from './paths.js';
import { resultsProblem, storeProblem } from './results-check.js';
import type {
  ImageResult,
  ResultsDocument,
  StoreError,
  StoreResult,
  StoreStatus,
} from '../types.js';

/** A results document without its stores: what comes before them in the file. */
export type ResultsHead = Omit<ResultsDocument, 'stores'>;

/** A store as `status` shows it: its images counted, not held. */
export type StoreSummary = {
  readonly store_id: string;
  readonly status: StoreStatus;
  readonly error?: string;
  readonly images: number;
  readonly done: number;
};

/** A job as `status` shows it: the head, and each store counted. */
export type JobSummary = ResultsHead & { readonly stores: readonly StoreSummary[] };

/** Largest file parsed whole when it is not in the one-store-per-line form (V8's string limit is 512 MB). */
const WHOLE_FILE_MAX = 256 << 20;

/** How the head line of a one-store-per-line file ends. */
const STORES_OPEN = ',"stores":[';
/** Every image of a store line starts so; nowhere else can it occur (a `"` in a string is escaped). */
const IMAGE_START = Buffer.from('{"url":');

/**
 * One results file, opened for reading: call `stores()` for each pass (a
 * report of several kinds reads it once per kind). The snapshot read is
 * held open, so every pass sees the same file even while a run replaces it.
 */
export class ResultsStream {
  readonly path: string;
  readonly #file: FileHandle;
  readonly #head: ResultsHead;
  /** The stores of a file parsed whole; undefined when read line by line. */
  readonly #whole: readonly StoreResult[] | undefined;
  /** The journal lines to replay, by store, in order. */
  readonly #journal: ReadonlyMap<number, readonly JournalLine[]>;
  readonly #replays: boolean;
  #latest: ResultsHead | undefined;

  private constructor(
    path: string,
    file: FileHandle,
    head: ResultsHead,
    whole: readonly StoreResult[] | undefined,
    journal: ReadonlyMap<number, readonly JournalLine[]>,
    replays: boolean,
  ) {
    this.path = path;
    this.#file = file;
    this.#head = head;
    this.#whole = whole;
    this.#journal = journal;
    this.#replays = replays;
  }

  /**
   * Opens a results file and reads its journals.
   * @throws {InputError} `E_RESULTS_FILE` when it cannot be read or is not a valid results file.
   */
  static async open(path: string): Promise<ResultsStream> {
    const { file, journal } = await openWithJournal(path);
    try {
      const first = await firstLine(file);
      const lined = first !== undefined && first.endsWith(STORES_OPEN);
      const whole = lined ? undefined : await parseWhole(file, path);
      const head = whole ? headOf(whole) : parseHead(first ?? '', path);
      const imageCounts =
        journal.length === 0
          ? []
          : (whole?.stores.map((store) => store.images.length) ?? (await countImages(file)));
      const kept = journal.slice(0, replayEnd(journal, imageCounts));
      const byStore = new Map<number, JournalLine[]>();
      for (const line of kept) {
        const store = storeOf(line);
        const list = byStore.get(store);
        if (list) list.push(line);
        else byStore.set(store, [line]);
      }
      return new ResultsStream(path, file, head, whole?.stores, byStore, kept.length > 0);
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  /**
   * The head as of the last whole pass of `stores()`: with the journal
   * replayed, the status, counts and error list are the stores' own (and
   * `updated_at` is now); before a pass, or without a journal, as in the file.
   */
  get head(): ResultsHead {
    return this.#latest ?? this.#head;
  }

  /** Every store in order, the journal applied. */
  async *stores(): AsyncGenerator<StoreResult> {
    const tally = new Tally();
    let index = 0;
    for await (const recorded of this.#recordedStores()) {
      const store = this.#replayed(recorded, index);
      tally.add(store);
      yield store;
      index++;
    }
    if (this.#replays) this.#latest = tally.head(this.#head);
  }

  /** One pass: the job as `status` shows it (each store's images counted, not kept). */
  async summary(): Promise<JobSummary> {
    const stores: StoreSummary[] = [];
    for await (const store of this.stores()) stores.push(storeSummary(store));
    return { ...this.head, stores };
  }

  /** The whole document, every store in memory (`--resume`, the HTML report). */
  async document(): Promise<ResultsDocument> {
    const stores: StoreResult[] = [];
    for await (const store of this.stores()) stores.push(store);
    return { ...this.head, stores };
  }

  async close(): Promise<void> {
    await this.#file.close();
  }

  async *#recordedStores(): AsyncGenerator<StoreResult> {
    if (this.#whole) {
      yield* this.#whole;
      return;
    }
    let index = -1;
    let ended = false;
    for await (const line of fileLines(this.#file)) {
      // The head line, then one store a line (a comma after each but the last), then `]}`.
      if (index++ === -1 || line.length === 0) continue;
      const text = line.toString('utf8');
      if (text === ']}') {
        ended = true;
        break;
      }
      yield parseStore(text.endsWith(',') ? text.slice(0, -1) : text, index - 1, this.path);
    }
    if (!ended) throw notJson(this.path);
  }

  #replayed(store: StoreResult, index: number): StoreResult {
    const lines = this.#journal.get(index);
    if (lines === undefined) return store;
    const images = [...store.images];
    let { status, error } = store;
    for (const line of lines) {
      const entry = entryOf(line, (_, image) => images[image]?.url);
      if (entry === undefined) continue;
      if (entry.t === 'image') images[entry.i] = entry.r;
      else ({ status, error } = entry);
    }
    const { error: _error, ...rest } = store;
    return { ...rest, status, ...(error === undefined ? {} : { error }), images };
  }
}

/** A whole document as `status` shows it. */
export function summaryOf(document: ResultsDocument): JobSummary {
  return { ...document, stores: document.stores.map(storeSummary) };
}

function storeSummary(store: StoreResult): StoreSummary {
  let done = 0;
  for (const image of store.images) if (image.status === 'done') done++;
  const { store_id, status, error } = store;
  return {
    store_id,
    status,
    ...(error === undefined ? {} : { error }),
    images: store.images.length,
    done,
  };
}

/** Counts and statuses over one pass of the stores, for the head of a replayed job. */
class Tally {
  readonly #counts = { done: 0, failed: 0, skipped: 0, pending: 0 };
  readonly #statuses: { status: StoreStatus }[] = [];
  readonly #failed: StoreError[] = [];

  add(store: StoreResult): void {
    for (const image of store.images) this.#counts[image.status]++;
    this.#statuses.push({ status: store.status });
    if (store.status === 'failed')
      this.#failed.push({ store_id: store.store_id, error: storeErrorText(store.error) });
  }

  /** As `JobState.toDocument` writes it: the run's fields recomputed, its writer and signal kept. */
  head(recorded: ResultsHead): ResultsHead {
    const {
      status: _status,
      error: _error,
      counts: _counts,
      updated_at: _updated,
      writer,
      interrupted,
      finished_at: _finished,
      timeline,
      network: _network,
      ...header
    } = recorded;
    const status = jobStatusOf(this.#statuses);
    const { done, failed, skipped, pending } = this.#counts;
    return {
      ...header,
      ...(writer ? { writer } : {}),
      ...(interrupted ? { interrupted } : {}),
      status,
      ...(status === 'failed' ? { error: this.#failed } : {}),
      updated_at: new Date().toISOString(),
      counts: {
        stores: this.#statuses.length,
        images: done + failed + skipped + pending,
        done,
        failed,
        skipped,
        pending,
      },
      ...(timeline && timeline.length > 0 ? { timeline } : {}),
    };
  }
}

// A live run rotates its journal when a snapshot starts and replaces the
// snapshot when it is on disk. A snapshot and journals read across either
// swap do not belong together (replayed, they could show the job going
// backwards), so they count as a pair only if neither the snapshot (held
// open: its inode cannot be reused) nor the journal changed identity
// meanwhile; otherwise, read again.
async function openWithJournal(
  path: string,
): Promise<{ file: FileHandle; journal: JournalLine[] }> {
  for (let attempt = 1; ; attempt++) {
    let file: FileHandle | undefined;
    try {
      const journalBefore = await inodeOf(journalPathOf(path));
      file = await open(path, 'r');
      const { ino } = await file.stat();
      // The rotated journal (a snapshot was being replaced) comes first.
      const journal = [...readJournal(oldJournalPathOf(path)), ...readJournal(journalPathOf(path))];
      const unchanged =
        (await inodeOf(path)) === ino && (await inodeOf(journalPathOf(path))) === journalBefore;
      if (unchanged || attempt >= 5) return { file, journal };
      await file.close();
    } catch (error) {
      await file?.close();
      throw new InputError(
        'E_RESULTS_FILE',
        `cannot read results file ${path}: ${describeFileError(error)}`,
        { cause: error },
      );
    }
  }
}

async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
  }
}

function readJournal(path: string): JournalLine[] {
  try {
    return parseJournal(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

async function firstLine(file: FileHandle): Promise<string | undefined> {
  for await (const line of fileLines(file)) return line.toString('utf8');
  return undefined;
}

async function parseWhole(file: FileHandle, path: string): Promise<ResultsDocument> {
  const { size } = await file.stat();
  if (size > WHOLE_FILE_MAX)
    throw new InputError(
      'E_RESULTS_FILE',
      `${path} is too big to read (${Math.round(size / 2 ** 20)} MB): imgjob reads a results file this big only as it writes it, one store a line`,
    );
  const text = (await file.read(Buffer.alloc(size), 0, size, 0)).buffer.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw notJson(path);
  }
  checkDocument(value, path);
  return value as ResultsDocument;
}

function parseHead(line: string, path: string): ResultsHead {
  let value: unknown;
  try {
    value = JSON.parse(`${line.slice(0, -STORES_OPEN.length)}}`);
  } catch {
    throw notJson(path);
  }
  checkDocument({ ...(value as object), stores: [] }, path);
  return value as ResultsHead;
}

function headOf(document: ResultsDocument): ResultsHead {
  const { stores: _stores, ...head } = document;
  return head;
}

function parseStore(text: string, index: number, path: string): StoreResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw notJson(path);
  }
  const problem = storeProblem(value, `stores[${index}]`);
  if (problem !== undefined) throw invalid(path, problem);
  return value as StoreResult;
}

function checkDocument(value: unknown, path: string): void {
  if ((value as { tool?: unknown } | null)?.tool !== 'imgjob')
    throw new InputError('E_RESULTS_FILE', `${path} is not an imgjob results file`);
  const problem = resultsProblem(value);
  if (problem !== undefined) throw invalid(path, problem);
}

function notJson(path: string): InputError {
  return new InputError('E_RESULTS_FILE', `${path} is not an imgjob results file (not valid JSON)`);
}

function invalid(path: string, problem: string): InputError {
  return new InputError('E_RESULTS_FILE', `${path} is not a valid imgjob results file: ${problem}`);
}

/** The images of each store, counted without parsing them: what the journal's lines must fit. */
async function countImages(file: FileHandle): Promise<number[]> {
  const counts: number[] = [];
  let first = true;
  for await (const line of fileLines(file)) {
    if (first || line.length === 0) {
      first = false;
      continue;
    }
    if (line[0] !== 0x7b) break; // not a store's `{`: the end
    counts.push(occurrences(line, IMAGE_START));
  }
  return counts;
}

/**
 * Where the replay stops: at the first line that fits no image (or store)
 * of this job, as a torn line would; a foreign or damaged journal goes no
 * further. The same test as `JobState.canApply`, made on the counts alone.
 */
function replayEnd(journal: readonly JournalLine[], imageCounts: readonly number[]): number {
  const fits = (store: unknown, image?: unknown): boolean =>
    Number.isInteger(store) &&
    (store as number) >= 0 &&
    (store as number) < imageCounts.length &&
    (image === undefined ||
      (Number.isInteger(image) &&
        (image as number) >= 0 &&
        (image as number) < (imageCounts[store as number] ?? 0)));
  const index = journal.findIndex((line) => {
    if (Array.isArray(line)) {
      const [s, i, w, h] = line as readonly unknown[];
      return !(fits(s, i) && Number.isInteger(w) && Number.isInteger(h));
    }
    // A line is any JSON value: nothing about it can be taken for granted.
    const entry = line as unknown as {
      t?: unknown;
      s?: unknown;
      i?: unknown;
      w?: unknown;
      h?: unknown;
      status?: unknown;
      r?: Partial<ImageResult> | null;
    } | null;
    if (typeof entry !== 'object' || entry === null) return true;
    if (entry.t === 'done')
      return !(fits(entry.s, entry.i) && Number.isInteger(entry.w) && Number.isInteger(entry.h));
    if (entry.t === 'store') return !(fits(entry.s) && STORE_STATUSES.has(entry.status));
    return !(
      fits(entry.s, entry.i) &&
      typeof entry.r?.url === 'string' &&
      IMAGE_STATUSES.has(entry.r.status)
    );
  });
  return index === -1 ? journal.length : index;
}

function storeOf(line: JournalLine): number {
  return Array.isArray(line) ? (line[0] as number) : (line as { s: number }).s;
}
