/**
 * Database failures that are the machine's, not the program's: a full disk,
 * an I/O error, a file made read-only. The server answers them with 503 and
 * reports itself unhealthy until a write succeeds again — never a 500.
 */

/** What is wrong with the storage, in words, or undefined when `error` is something else. */
export function storageProblem(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  if (code === 'SQLITE_FULL') return 'the disk is full';
  if (code.startsWith('SQLITE_READONLY')) return 'the database is read-only';
  if (code.startsWith('SQLITE_IOERR')) return `an I/O error (${code})`;
  if (code.startsWith('SQLITE_CANTOPEN')) return 'the database file cannot be opened';
  return undefined;
}

/** A write the database could not take for a reason of the machine's: answered 503. */
export class StorageUnavailableError extends Error {
  constructor(problem: string, options?: ErrorOptions) {
    super(`the server cannot write to its database: ${problem}; try again later`, options);
    this.name = 'StorageUnavailableError';
  }
}
