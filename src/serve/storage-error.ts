/**
 * Database failures that are the machine's, not the program's: a full disk,
 * an I/O error, a file made read-only. The server answers them with 503 and
 * reports itself unhealthy until a write succeeds again — never a 500.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { ImgjobError } from '../utils/errors.js';

/** What is wrong with the storage, in words, or undefined when `error` is something else. */
export function storageProblem(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  // From the file-system probe below.
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'the disk is full';
  if (code === 'EROFS') return 'the database is read-only';
  if (code === 'EIO') return 'an I/O error (EIO)';
  if (code === 'SQLITE_FULL') return 'the disk is full';
  if (code.startsWith('SQLITE_READONLY')) return 'the database is read-only';
  if (code.startsWith('SQLITE_IOERR')) return `an I/O error (${code})`;
  if (code.startsWith('SQLITE_CANTOPEN')) return 'the database file cannot be opened';
  return undefined;
}

/** A write the database could not take for a reason of the machine's: answered 503. */
export class StorageUnavailableError extends ImgjobError {
  /** What is wrong with the storage, in words (see `storageProblem`). */
  readonly problem: string;

  constructor(problem: string, options?: ErrorOptions) {
    super(
      'E_STORAGE_UNAVAILABLE',
      `the server cannot write to its database: ${problem}; try again later`,
      options,
    );
    this.problem = problem;
  }
}

/** What the probe writes beside the database: more than one WAL page, less than any real disk's slack. */
const PROBE_BYTES = 64 * 1024;

/**
 * Whether the database's disk takes writes again, after a failure, when no
 * job is writing anything to find out. A write to the database alone would
 * not tell: SQLite reuses its WAL file's space, so a page may fit on a full
 * disk. So: a small file beside the database (written, then removed), then
 * one page of the database itself.
 * @throws what the failing write threw.
 */
export function probeStorage(databasePath: string, writePage: () => void): void {
  if (databasePath !== ':memory:' && databasePath !== '') {
    const probe = join(dirname(databasePath), `.${basename(databasePath)}.probe-${process.pid}`);
    try {
      writeFileSync(probe, Buffer.alloc(PROBE_BYTES));
    } finally {
      rmSync(probe, { force: true });
    }
  }
  writePage();
}
