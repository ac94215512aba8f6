import { closeSync, constants, ftruncateSync, openSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';

import { FileReplacement, injectedWriteFault, writeAllSync } from '../utils/atomic-file.js';
import type { JobState, JournalEntry } from './job-state.js';
import { JournalBuffer } from './journal.js';
import { journalPathOf, oldJournalPathOf } from './paths.js';
import { ResultsSaveError, saveErrorOf } from './save-error.js';
import { StoreTextCache, type JobSnapshot } from './snapshot.js';
import type { NetworkSummary } from '../types.js';

export type SaveStats = {
  readonly saves: number;
  /**
   * Time saving held the job up: building snapshots (their writes, fsyncs
   * and renames run in the background), plus the whole final save, which
   * the job waits for.
   */
  readonly savingMs: number;
  /** Time journal writes blocked the process. */
  readonly journalMs: number;
  /** Journal writes (each carries the lines of up to `JOURNAL_FLUSH_MS`). */
  readonly journalWrites: number;
  /** Of `savingMs`: building the snapshots taken while the job ran. */
  readonly snapshotMs: number;
  /** Of `savingMs`: the final save, start to end. */
  readonly finalMs: number;
};

/**
 * How long a journal line may wait for the write that carries it. Lines of
 * the same few milliseconds share one write(2): at 15,000 images/s a write
 * per event-loop turn was ~8,000 writes for 100k images, about 2% of the
 * run; one every 2 ms at most is a third of that. A `kill -9` loses at most
 * the lines not yet written (2 ms' worth, or as long as the event loop was
 * busy), and --resume redoes those images.
 */
export const JOURNAL_FLUSH_MS = 2;

/**
 * The most bytes a second that snapshots taken while a job runs may write,
 * on average. A snapshot is the whole document, so at a fixed interval the
 * bytes written grow as the job's size times its length: a million images
 * were ~170 MB rewritten every ~1.5 s, 60 times the final file in all, and
 * the cost per image grew with the job. Spacing snapshots by their size
 * keeps what saving costs per image the same at any size: a job under 4 MB
 * (~25,000 images) is refreshed every second, 100,000 images (~16 MB) every
 * ~4 s, a million (~170 MB) every ~40 s, ten million every ~8 min. The
 * journal is the live record in between; `status` and `report` replay it.
 */
export const SNAPSHOT_BYTES_PER_SECOND = 4_000_000;

/** Appending, creating, and never through a planted symlink. */
const JOURNAL_FLAGS =
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * Keeps the results file of one running job durable and live at low cost:
 *
 * - `<file>` is a snapshot of the whole document, replaced atomically (temp
 *   file, fsync, rename, fsync of the folder): it is never half-written.
 *   While the job runs it is refreshed about once a second (`intervalMs`)
 *   whenever something changed, so readers of the bare file (jq, a
 *   dashboard) are at most about a second behind; a big job's snapshot,
 *   less often (`SNAPSHOT_BYTES_PER_SECOND`).
 * - `<file>.journal` gets a line per change, written within
 *   `JOURNAL_FLUSH_MS`, so a `kill -9` loses at most the images that were
 *   in flight or recorded in those last milliseconds.
 *   Replaying it is idempotent, so a snapshot may hold some of its lines.
 *
 * A snapshot is built in one go (so it is the state of one instant) from
 * cached per-store text — only stores that changed are serialized again —
 * and then written, fsynced and renamed in the background. When it starts,
 * the journal is rotated to `<file>.journal.old`, which goes once the new
 * snapshot is in place; until then a reader replays both.
 *
 * A write that fails (a full disk, permissions) stops journaling and
 * snapshots and calls `onFailure`, so the run can stop; `close()` then tries
 * one last save and throws. A failed save never replaces the snapshot and
 * never removes a journal: the results stay resumable.
 */
export class ResultsWriter {
  readonly path: string;
  readonly #state: JobState;
  readonly #journalPath: string;
  readonly #oldJournalPath: string;
  readonly #intervalMs: number;
  readonly #maxShare: number;
  readonly #bytesPerSecond: number;
  readonly #continues: boolean;
  readonly #onFailure: ((error: unknown) => void) | undefined;
  readonly #onSave: ((ms: number) => void) | undefined;
  readonly #network: (() => NetworkSummary | undefined) | undefined;
  readonly #kept = new StoreTextCache();
  #journal: number | undefined;
  #journalBytes = 0;
  readonly #lines = new JournalBuffer();
  #flushTimer: NodeJS.Timeout | undefined;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;
  #committing: Promise<void> | undefined;
  #failure: Error | undefined;
  #closed = false;
  /** Set while the journal follows the state: from `open` to `close`. */
  #unsubscribe: (() => void) | undefined;
  /** Start of the last snapshot, and how long building it blocked. */
  #lastStart = 0;
  #lastCost = 0;
  /** Size of the last snapshot: about the room the next one needs. */
  #lastSize = 0;
  #savingMs = 0;
  #snapshotMs = 0;
  #finalMs = 0;
  #journalMs = 0;
  #journalWrites = 0;
  #saves = 0;
  readonly #queue: { readonly queue?: string };

  /**
   * @param options.continues `state` was loaded from this file (`--resume`),
   * journals included. @default false
   * @param options.intervalMs Least time between snapshot starts. @default 1000
   * @param options.maxShare Most of the wall time building snapshots may
   * block; a job whose snapshots cost more is refreshed less often. @default 0.03
   * @param options.bytesPerSecond Most bytes a second snapshots may write on
   * average; a big job is refreshed less often. @default SNAPSHOT_BYTES_PER_SECOND
   * @param options.onFailure Called once when a write fails; `close()`
   * throws the error then.
   * @param options.onSave Told how long each snapshot took, from its start
   * until it was in place (metrics).
   * @param options.network What the downloads met, for every save (see `refresh()`).
   */
  constructor(
    path: string,
    state: JobState,
    options: {
      intervalMs?: number;
      maxShare?: number;
      bytesPerSecond?: number;
      continues?: boolean;
      onFailure?: (error: unknown) => void;
      onSave?: ((ms: number) => void) | undefined;
      /** The run's `--queue` Redis, credentials hidden (for a resume hint). */
      queue?: string | undefined;
      network?: () => NetworkSummary | undefined;
    } = {},
  ) {
    this.path = path;
    this.#state = state;
    this.#journalPath = journalPathOf(path);
    this.#oldJournalPath = oldJournalPathOf(path);
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#maxShare = options.maxShare ?? 0.03;
    this.#bytesPerSecond = options.bytesPerSecond ?? SNAPSHOT_BYTES_PER_SECOND;
    this.#continues = options.continues ?? false;
    this.#onFailure = options.onFailure;
    this.#onSave = options.onSave;
    this.#queue = options.queue === undefined ? {} : { queue: options.queue };
    this.#network = options.network;
  }

  /**
   * Saves again at the next turn although no image changed: the hosts
   * paused and the slow downloads are news for `status` of a stuck job.
   */
  refresh(): void {
    if (this.#closed || this.#unsubscribe === undefined) return;
    this.#dirty = true;
    this.#schedule();
  }

  /** Writes the first snapshot and starts journaling every change. */
  async open(): Promise<void> {
    // Journals an earlier run left belong to another job unless this one was
    // loaded from them (--resume); either way none may outlive this snapshot:
    // replayed over it they would rewind it, and lines appended after a torn
    // last line would never be read. A failed first save keeps them.
    if (!this.#continues) this.#removeJournals();
    try {
      await this.#saveNow(this.#snapshot());
      this.#removeJournals();
      this.#journal = openSync(this.#journalPath, JOURNAL_FLAGS, 0o644);
    } catch (error) {
      throw saveErrorOf(error, this.path, this.#lastSize);
    }
    this.#unsubscribe = this.#state.subscribe((entry) => {
      this.#append(entry);
      this.#dirty = true;
      this.#schedule();
    });
  }

  /**
   * The final snapshot: the job ended (or was interrupted); the journals go.
   * After a failed write it is still tried (it may hold what the journal
   * could not), then the failure is thrown.
   */
  async close(interrupted: boolean): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#timer);
    clearTimeout(this.#flushTimer);
    await this.#committing;
    if (this.#failure === undefined) this.#flush();
    const ended = {
      ...(interrupted ? { interrupted: true } : { finished_at: new Date().toISOString() }),
      ...this.#queue,
    };
    // Only the counts: nothing is paused or in flight once the job is over.
    const hosts = this.#network?.()?.hosts;
    const extra = hosts ? { ...ended, network: { hosts } } : ended;
    // No `writer` any more: nobody is writing this file now.
    let saved = false;
    try {
      this.#finalMs = await this.#saveNow(this.#state.snapshot(extra));
      saved = true;
    } catch (error) {
      // Its room estimate is the one that counts: this save is what must
      // succeed for the results to be whole.
      const failure = saveErrorOf(error, this.path, this.#lastSize);
      if (this.#failure === undefined || failure instanceof ResultsSaveError) {
        this.#failure = failure;
      }
    }
    if (this.#journal !== undefined) closeSync(this.#journal);
    this.#journal = undefined;
    // Only a snapshot in place makes the journals redundant.
    if (saved) this.#removeJournals();
    if (this.#failure !== undefined) throw this.#failure;
  }

  /**
   * Writes the lines recorded so far now, rather than within
   * `JOURNAL_FLUSH_MS`: for a caller that must not acknowledge a change
   * before it survives a kill -9 (the queue coordinator). Rejects when the
   * journal can no longer be written.
   */
  journaled(): Promise<void> {
    this.#flush();
    return this.#failure === undefined ? Promise.resolve() : Promise.reject(this.#failure);
  }

  /** Snapshots and journal writes, and the time they blocked the process. */
  get stats(): SaveStats {
    return {
      saves: this.#saves,
      savingMs: this.#savingMs,
      journalMs: this.#journalMs,
      journalWrites: this.#journalWrites,
      snapshotMs: this.#snapshotMs,
      finalMs: this.#finalMs,
    };
  }

  // `imgjob status` replays the journal and is always current; the snapshot
  // is refreshed for readers of the bare file (jq, editors, dashboards).
  #schedule(): void {
    if (this.#timer !== undefined || this.#committing || this.#closed) return;
    if (this.#failure !== undefined || !this.#dirty) return;
    const gap = Math.max(
      this.#intervalMs,
      this.#lastCost / this.#maxShare,
      (this.#lastSize / this.#bytesPerSecond) * 1000,
    );
    const delay = Math.max(0, this.#lastStart + gap - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#snapshotInBackground();
    }, delay);
    // The job's own work keeps the process alive; close() clears it.
    this.#timer.unref();
  }

  #snapshotInBackground(): void {
    if (this.#closed || this.#failure !== undefined) return;
    // The lines before the snapshot go to the journal it replaces (counted
    // as journal time, not snapshot time).
    this.#flush();
    if (this.#failed()) return;
    const started = performance.now();
    let snapshot: JobSnapshot;
    try {
      this.#rotateJournal();
      this.#dirty = false;
      snapshot = this.#snapshot();
    } catch (error) {
      this.#fail(error);
      return;
    }
    const taking = performance.now() - started;
    this.#lastStart = started;
    this.#saves++;
    this.#committing = this.#write(snapshot)
      .then((spelling) => {
        // Taking it and spelling its text held the job up; the throttle
        // weighs them alone, not the writes in between.
        this.#lastCost = taking + spelling;
        this.#snapshotMs += this.#lastCost;
        this.#savingMs += this.#lastCost;
        rmSync(this.#oldJournalPath, { force: true });
        this.#onSave?.(performance.now() - started);
      })
      .catch((error: unknown) => {
        // The journals still hold every change since the last good snapshot.
        this.#fail(error);
      })
      .finally(() => {
        this.#committing = undefined;
        this.#schedule();
      });
  }

  /** A save the job waits for (the first and the last): all of it counts. */
  async #saveNow(snapshot: JobSnapshot): Promise<number> {
    const started = performance.now();
    await this.#write(snapshot);
    const cost = performance.now() - started;
    this.#lastStart = started;
    this.#savingMs += cost;
    this.#saves++;
    this.#onSave?.(cost);
    return cost;
  }

  /**
   * Replaces the results file with `snapshot`'s text, spelled a piece at a
   * time, each written before the next is spelled.
   * @returns the time spent spelling.
   */
  async #write(snapshot: JobSnapshot): Promise<number> {
    const file = await FileReplacement.open(this.path);
    let spelling = 0;
    let size = 0;
    try {
      const pieces = snapshot.pieces(this.#kept);
      for (;;) {
        const start = performance.now();
        const piece = pieces.next();
        spelling += performance.now() - start;
        if (piece.done === true) break;
        size += piece.value.length;
        // The room estimate of a failure: at least what this one had written.
        this.#lastSize = Math.max(this.#lastSize, size);
        await file.write([piece.value]);
      }
    } catch (error) {
      await file.abort();
      throw error;
    }
    await file.commit();
    this.#lastSize = size;
    return spelling;
  }

  #snapshot(): JobSnapshot {
    const network = this.#network?.();
    return this.#state.snapshot({
      writer: { pid: process.pid, host: hostname() },
      ...this.#queue,
      ...(network ? { network } : {}),
    });
  }

  #append(entry: JournalEntry): void {
    if (this.#failure !== undefined) return;
    this.#lines.append(entry);
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flush();
    }, JOURNAL_FLUSH_MS);
  }

  // One write for the lines of the last few milliseconds: once written they
  // are in the kernel, and so survive a kill -9.
  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#lines.length === 0 || this.#journal === undefined) return;
    if (this.#failure !== undefined) return;
    const started = performance.now();
    const lines = this.#lines.bytes;
    try {
      injectedWriteFault();
      writeAllSync(this.#journal, lines);
      this.#journalBytes += lines.length;
      this.#lines.clear();
    } catch (error) {
      // Whole lines only: a torn line would end every later replay there.
      try {
        ftruncateSync(this.#journal, this.#journalBytes);
      } catch {
        // The reader stops at a torn line; what precedes it still counts.
      }
      this.#fail(error);
    }
    this.#journalMs += performance.now() - started;
    this.#journalWrites++;
  }

  #rotateJournal(): void {
    if (this.#journal !== undefined) closeSync(this.#journal);
    this.#journal = undefined;
    renameSync(this.#journalPath, this.#oldJournalPath);
    this.#journal = openSync(this.#journalPath, JOURNAL_FLAGS, 0o644);
    this.#journalBytes = 0;
  }

  // A method, not a field read: TypeScript would narrow the field past #flush().
  #failed(): boolean {
    return this.#failure !== undefined;
  }

  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = saveErrorOf(error, this.path, this.#lastSize);
    clearTimeout(this.#timer);
    this.#onFailure?.(this.#failure);
  }

  #removeJournals(): void {
    rmSync(this.#journalPath, { force: true });
    rmSync(this.#oldJournalPath, { force: true });
  }
}
