import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';

import { stageFile } from '../utils/atomic-file.js';
import type { JobState, JournalEntry } from './job-state.js';
import { encodeJournalEntry } from './journal.js';
import { journalPathOf, oldJournalPathOf } from './paths.js';
import type { ResultsDocument } from '../types.js';

export type SaveStats = {
  readonly saves: number;
  /** Time snapshots blocked the process (their fsyncs run in the background). */
  readonly savingMs: number;
  /** Time journal writes blocked the process. */
  readonly journalMs: number;
};

/**
 * Keeps the results file of one running job durable at low cost:
 *
 * - `<file>` is a snapshot of the whole document, replaced atomically (temp
 *   file, fsync, rename, fsync of the folder): it is never half-written.
 * - `<file>.journal` gets a line per change (flushed once per event-loop
 *   turn), so a `kill -9` loses at most the images that were in flight.
 *   Replaying it is idempotent, so a snapshot may hold some of its lines.
 *
 * A snapshot is written in two steps: its content, synchronously (so it is
 * the state of one instant), then the fsyncs and the rename in the
 * background, so GPU timers and downloads are not held up by the disk.
 * When it starts, the journal is rotated to `<file>.journal.old`, which goes
 * once the new snapshot is in place; until then a reader replays both.
 *
 * The journal alone keeps every change, so a snapshot is only the journal
 * compacted for readers: one is written at the start and at the end, and in
 * between when the file on disk is `maxStaleMs` old — never more often than
 * blocking ~2% of wall time allows. Saving a 100k-image job thus stays
 * linear in its size instead of growing with its square.
 */
export class ResultsWriter {
  readonly path: string;
  readonly #state: JobState;
  readonly #journalPath: string;
  readonly #oldJournalPath: string;
  readonly #minIntervalMs: number;
  readonly #maxShare: number;
  readonly #maxStaleMs: number;
  readonly #continues: boolean;
  #journal: number | undefined;
  #lines: string[] = [];
  #flushScheduled = false;
  #committing: Promise<void> | undefined;
  #failure: Error | undefined;
  #lastSave = 0;
  #lastCost = 0;
  #savingMs = 0;
  #journalMs = 0;
  #saves = 0;

  /**
   * @param options.continues `state` was loaded from this file (`--resume`),
   * journals included. @default false
   * @param options.minIntervalMs Least time between snapshots. @default 1000
   * @param options.maxShare Most of the wall time snapshots may block. @default 0.02
   * @param options.maxStaleMs How old the snapshot may grow while changes come. @default 10_000
   */
  constructor(
    path: string,
    state: JobState,
    options: {
      minIntervalMs?: number;
      maxShare?: number;
      maxStaleMs?: number;
      continues?: boolean;
    } = {},
  ) {
    this.path = path;
    this.#state = state;
    this.#journalPath = journalPathOf(path);
    this.#oldJournalPath = oldJournalPathOf(path);
    this.#minIntervalMs = options.minIntervalMs ?? 1000;
    this.#maxShare = options.maxShare ?? 0.02;
    this.#maxStaleMs = options.maxStaleMs ?? 10_000;
    this.#continues = options.continues ?? false;
  }

  /** Writes the first snapshot and starts journaling every change. */
  open(): void {
    // Journals an earlier run left belong to another job unless this one was
    // loaded from them (--resume); either way none may outlive this snapshot:
    // replayed over it they would rewind it, and lines appended after a torn
    // last line would never be read.
    if (!this.#continues) this.#removeJournals();
    this.#saveNow(this.#document());
    this.#removeJournals();
    this.#journal = openSync(this.#journalPath, 'a');
    this.#state.onChange = (entry) => {
      this.#append(entry);
      this.#maybeSnapshot();
    };
  }

  /** The final snapshot: the job ended (or was interrupted); the journals go. */
  async close(interrupted: boolean): Promise<void> {
    this.#state.onChange = undefined;
    await this.#committing;
    this.#flush();
    const extra = interrupted ? { interrupted: true } : { finished_at: new Date().toISOString() };
    // No `writer` any more: nobody is writing this file now.
    this.#saveNow(this.#state.toDocument(extra));
    if (this.#journal !== undefined) closeSync(this.#journal);
    this.#journal = undefined;
    this.#removeJournals();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Snapshots and journal writes, and the time they blocked the process. */
  get stats(): SaveStats {
    return { saves: this.#saves, savingMs: this.#savingMs, journalMs: this.#journalMs };
  }

  // `imgjob status` replays the journal and is always current; the snapshot
  // is refreshed for readers of the bare file (jq, editors).
  #maybeSnapshot(): void {
    if (this.#committing) return;
    const elapsed = performance.now() - this.#lastSave;
    const throttle = Math.max(this.#minIntervalMs, this.#lastCost / this.#maxShare);
    if (elapsed >= Math.max(throttle, this.#maxStaleMs)) this.#snapshotInBackground();
  }

  #snapshotInBackground(): void {
    const started = performance.now();
    this.#flush();
    this.#rotateJournal();
    const staged = stageFile(this.path, documentPieces(this.#document()));
    this.#account(started);
    this.#committing = staged
      .commit()
      .then(() => {
        rmSync(this.#oldJournalPath, { force: true });
      })
      .catch((error: unknown) => {
        // Kept for close(): the journals still hold every change meanwhile.
        this.#failure ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        this.#committing = undefined;
      });
  }

  #saveNow(document: ResultsDocument): void {
    const started = performance.now();
    const staged = stageFile(this.path, documentPieces(document));
    staged.commitSync();
    this.#account(started);
  }

  #document(): ResultsDocument {
    return this.#state.toDocument({ writer: { pid: process.pid, host: hostname() } });
  }

  #account(started: number): void {
    this.#lastSave = performance.now();
    this.#lastCost = this.#lastSave - started;
    this.#savingMs += this.#lastCost;
    this.#saves++;
  }

  #append(entry: JournalEntry): void {
    this.#lines.push(encodeJournalEntry(entry));
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flush();
    });
  }

  // One write per event-loop turn: what a turn recorded reaches the kernel
  // (and so survives a kill -9) before any other work is done.
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#lines.length === 0 || this.#journal === undefined) return;
    const started = performance.now();
    writeSync(this.#journal, this.#lines.join(''));
    this.#lines = [];
    this.#journalMs += performance.now() - started;
  }

  #rotateJournal(): void {
    if (this.#journal !== undefined) closeSync(this.#journal);
    renameSync(this.#journalPath, this.#oldJournalPath);
    this.#journal = openSync(this.#journalPath, 'a');
  }

  #removeJournals(): void {
    rmSync(this.#journalPath, { force: true });
    rmSync(this.#oldJournalPath, { force: true });
  }
}

/**
 * The document as pieces: one per store for a big job, so its text never
 * exists as one string. People read small files: those are indented.
 */
function* documentPieces(document: ResultsDocument): Generator<string> {
  if (document.counts.images <= 5000) {
    yield `${JSON.stringify(document, null, 2)}\n`;
    return;
  }
  const { stores, ...header } = document;
  yield `${JSON.stringify(header).slice(0, -1)},"stores":[\n`;
  for (let index = 0; index < stores.length; index++) {
    yield `${index === 0 ? '' : ',\n'}${JSON.stringify(stores[index])}`;
  }
  yield '\n]}\n';
}
