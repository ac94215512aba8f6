/**
 * Whether the database takes writes, as `/healthz` reports it: unhealthy
 * from the first failed write (a batch of results, or a submit) until a
 * write works again — told by the batch writer's next success or, when
 * nothing is writing, found out by a probe. Writes the log lines of an
 * outage: one when it starts, one when it ends.
 */
import { describeError } from '../utils/errors.js';
import type { EventLog } from '../log/event-log.js';
import { probeStorage, storageProblem } from './storage-error.js';

export class StorageHealth {
  readonly #dbPath: string;
  readonly #writePage: () => void;
  readonly #log: EventLog | undefined;
  /** What keeps the database from taking writes, while it lasts. */
  #reason: string | undefined;

  /**
   * @param dbPath the database file (its folder is probed)
   * @param writePage writes one page of the database (throws when it cannot)
   */
  constructor(dbPath: string, writePage: () => void, log: EventLog | undefined) {
    this.#dbPath = dbPath;
    this.#writePage = writePage;
    this.#log = log;
  }

  /**
   * Notes a failed write; returns what is wrong with the storage in words,
   * or undefined when the error is not the machine's (a bug).
   */
  failed(error: unknown): string | undefined {
    const problem = storageProblem(error);
    this.#reason = `cannot write to the database: ${problem ?? describeError(error)}`;
    return problem;
  }

  /** A write worked. */
  worked(): void {
    this.#reason = undefined;
  }

  /** The batch writer's writes started to fail (told once per outage). */
  writerFailing(error: unknown): void {
    const problem = this.failed(error);
    if (problem === undefined) {
      this.#log?.error('cannot write to the database (retrying until it works)', error);
      return;
    }
    this.#log?.write(
      'error',
      'storage_failing',
      `cannot write to the database: ${problem} (retrying until it works)`,
      { reason: problem },
    );
  }

  /** The batch writer's writes work again. */
  writerRecovered(failedWrites: number): void {
    this.worked();
    this.#log?.write(
      'info',
      'storage_recovered',
      `the database takes writes again (after ${failedWrites} failed tr${failedWrites === 1 ? 'y' : 'ies'})`,
      { failed_writes: failedWrites },
    );
  }

  /**
   * Why the database takes no writes, or undefined when it does. With
   * `writerRetrying` false nothing else will find out, so a probe does.
   */
  reason(writerRetrying: boolean): string | undefined {
    if (this.#reason === undefined || writerRetrying) return this.#reason;
    try {
      probeStorage(this.#dbPath, this.#writePage);
      this.worked();
    } catch (error) {
      this.failed(error);
    }
    return this.#reason;
  }
}
