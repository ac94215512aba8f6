import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';

import { InputError } from './errors.js';
import { JobState, type JournalEntry } from './job-state.js';
import type { ResultsDocument } from './types.js';

/**
 * The results file of one job, kept durable at low cost:
 *
 * - `<file>` is a snapshot of the whole document, replaced atomically (temp
 *   file, fsync, rename, fsync of the folder): it is never half-written.
 * - `<file>.journal` gets one line per change the moment it happens, so a
 *   `kill -9` loses at most the images that were in flight. Each snapshot
 *   empties the journal; replaying it is idempotent, so a crash between the
 *   two is harmless.
 *
 * Snapshots are throttled by their own cost (at least `minIntervalMs` apart
 * and at most ~2% of wall time), so saving a 100k-image job never grows with
 * the square of its size.
 */
export class ResultsWriter {
  readonly path: string;
  readonly #state: JobState;
  readonly #journalPath: string;
  readonly #minIntervalMs: number;
  readonly #continues: boolean;
  #journal: number | undefined;
  #lastSave = 0;
  #lastCost = 0;
  #savingMs = 0;
  #saves = 0;

  /**
   * @param options.continues `state` was loaded from this file (`--resume`),
   * journal included. @default false
   */
  constructor(
    path: string,
    state: JobState,
    options: { minIntervalMs?: number; continues?: boolean } = {},
  ) {
    this.path = path;
    this.#state = state;
    this.#journalPath = journalPathOf(path);
    this.#minIntervalMs = options.minIntervalMs ?? 1000;
    this.#continues = options.continues ?? false;
  }

  /** Writes the first snapshot and starts journaling every change. */
  open(): void {
    // A journal an earlier run left beside the file must not outlive this
    // first snapshot: a resumed job has replayed it into its state, so it goes
    // once the snapshot holds it (snapshot() empties it); it belongs to another
    // job otherwise (--force, a stray file), so it goes before anything is
    // written. Left in place, it would be replayed over this job's results,
    // and new lines appended after a torn last line would never be read.
    this.#journal = openSync(this.#journalPath, 'a');
    if (!this.#continues) ftruncateSync(this.#journal, 0);
    this.snapshot();
    this.#state.onChange = (entry) => {
      this.#append(entry);
      this.maybeSnapshot();
    };
  }

  /** A snapshot if the throttle allows one now. */
  maybeSnapshot(): void {
    const interval = Math.max(this.#minIntervalMs, this.#lastCost * 50);
    if (performance.now() - this.#lastSave >= interval) this.snapshot();
  }

  snapshot(extra: Parameters<JobState['toDocument']>[0] = {}): void {
    const started = performance.now();
    const document = this.#state.toDocument({
      writer: { pid: process.pid, host: hostname() },
      ...extra,
    });
    writeDocument(this.path, document);
    if (this.#journal !== undefined) ftruncateSync(this.#journal, 0);
    this.#lastSave = performance.now();
    this.#lastCost = this.#lastSave - started;
    this.#savingMs += this.#lastCost;
    this.#saves++;
  }

  /** The final snapshot: the job ended (or was interrupted); the journal goes. */
  close(interrupted: boolean): void {
    this.#state.onChange = undefined;
    const extra = interrupted ? { interrupted: true } : { finished_at: new Date().toISOString() };
    writeDocument(this.path, this.#state.toDocument(extra));
    if (this.#journal !== undefined) closeSync(this.#journal);
    this.#journal = undefined;
    rmSync(this.#journalPath, { force: true });
  }

  /** Time spent saving, for the benchmark's "save share". */
  get stats(): { saves: number; savingMs: number } {
    return { saves: this.#saves, savingMs: this.#savingMs };
  }

  #append(entry: JournalEntry): void {
    if (this.#journal !== undefined) writeSync(this.#journal, `${JSON.stringify(entry)}\n`);
  }
}

/** Reads a results file and replays its journal, if a run left one. */
export async function loadResults(path: string): Promise<ResultsDocument> {
  const { text, journal } = await readSnapshotAndJournal(path);
  const document = parseResults(text, path);
  if (journal.length === 0) return document;
  const state = JobState.fromDocument(document);
  for (const entry of journal) state.apply(entry);
  const { writer, interrupted } = document;
  return state.toDocument({
    ...(writer ? { writer } : {}),
    ...(interrupted ? { interrupted } : {}),
  });
}

// A live run replaces the snapshot and then empties the journal: a journal
// read after such a swap belongs to a newer snapshot than the one read, and
// replaying it there shows the job going backwards. So the two count as a
// pair only if the snapshot read (held open: its inode cannot be reused) is
// still the file's snapshot once the journal was read.
async function readSnapshotAndJournal(
  path: string,
): Promise<{ text: string; journal: JournalEntry[] }> {
  for (let attempt = 1; ; attempt++) {
    let file: FileHandle | undefined;
    try {
      file = await open(path, 'r');
      const { ino } = await file.stat();
      const text = await file.readFile('utf8');
      const journal = readJournal(journalPathOf(path));
      if (attempt >= 5 || (await stat(path)).ino === ino) return { text, journal };
    } catch (error) {
      throw new InputError('E_RESULTS_FILE', `cannot read results file ${path}: ${reason(error)}`, {
        cause: error,
      });
    } finally {
      await file?.close();
    }
  }
}

/** Whether the run that wrote this document still runs (same host, live pid). */
export function isWriterAlive(document: ResultsDocument): boolean {
  const { writer } = document;
  if (!writer || writer.host !== hostname()) return false;
  try {
    process.kill(writer.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function journalPathOf(path: string): string {
  return `${path}.journal`;
}

function writeDocument(path: string, document: ResultsDocument): void {
  // Indented for people up to a size where the extra bytes start to cost.
  const indent = document.counts.images <= 5000 ? 2 : undefined;
  writeFileAtomic.sync(path, `${JSON.stringify(document, null, indent)}\n`, { fsync: true });
  fsyncFolder(dirname(path));
}

// The rename is durable only once the folder's entry is on disk too.
function fsyncFolder(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a folder; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function parseResults(text: string, path: string): ResultsDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InputError(
      'E_RESULTS_FILE',
      `${path} is not an imgjob results file (not valid JSON)`,
    );
  }
  if (!isResultsDocument(value)) {
    throw new InputError('E_RESULTS_FILE', `${path} is not an imgjob results file`);
  }
  return value;
}

function isResultsDocument(value: unknown): value is ResultsDocument {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof ResultsDocument, unknown>>;
  return (
    candidate.tool === 'imgjob' &&
    candidate.schema_version === 1 &&
    typeof candidate.job_id === 'string' &&
    typeof candidate.manifest_digest === 'string' &&
    typeof candidate.options === 'object' &&
    candidate.options !== null &&
    Array.isArray(candidate.stores) &&
    candidate.stores.every(isStoreResult)
  );
}

// Deep enough that nothing later trips over a hand-edited or foreign file.
function isStoreResult(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const store = value as Record<string, unknown>;
  return (
    typeof store.store_id === 'string' &&
    typeof store.status === 'string' &&
    STORE_STATUSES.has(store.status) &&
    Array.isArray(store.images) &&
    store.images.every(
      (image) =>
        typeof image === 'object' &&
        image !== null &&
        typeof (image as Record<string, unknown>).url === 'string' &&
        IMAGE_STATUSES.has((image as Record<string, unknown>).status as string),
    )
  );
}

const STORE_STATUSES: ReadonlySet<unknown> = new Set([
  'pending',
  'ongoing',
  'completed',
  'failed',
  'skipped',
]);
const IMAGE_STATUSES: ReadonlySet<unknown> = new Set(['pending', 'done', 'failed', 'skipped']);

// A crash can leave the last line half-written: replay up to the first line
// that does not parse, which is exactly what had been recorded.
function readJournal(path: string): JournalEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      break;
    }
  }
  return entries;
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a folder';
  return error instanceof Error ? error.message : String(error);
}
