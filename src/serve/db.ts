/**
 * Opens the serve database: SQLite through better-sqlite3, in WAL mode, at
 * the latest schema.
 */
import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';

import { describeError, InputError } from '../utils/errors.js';
import { migrate } from './migrations.js';

/**
 * Opens (or creates) the database at `path` and migrates it.
 *
 * - WAL: readers never wait for the writer, and a commit is one append.
 * - `synchronous = NORMAL`: a commit survives a crash or `kill -9` of the
 *   process (the WAL is in the OS before the commit returns); only a power
 *   loss can take back the last commits, never corrupt the file.
 * - `locking_mode = EXCLUSIVE`: the first server holds the file for as long as
 *   it runs, so a second server on the same file fails at start instead of
 *   resuming — and so running twice — the same jobs.
 *
 * @throws {InputError} `E_USAGE` when the file cannot be opened, is in use, or
 *   is not an imgjob database.
 */
export function openDatabase(path: string): Database {
  let db: Database | undefined;
  try {
    // A server that was just stopped may take a moment to let go of the file.
    db = new Sqlite(path, { timeout: 1000 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db);
    return db;
  } catch (error) {
    db?.close();
    throw new InputError('E_USAGE', `cannot use database ${path}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}

function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === 'SQLITE_BUSY') return 'it is in use by another imgjob serve';
  if (code === 'SQLITE_NOTADB') return 'it is not a database';
  if (code === 'SQLITE_CANTOPEN') return 'cannot open the file';
  // better-sqlite3 checks the folder itself, with a TypeError of its own.
  if (error instanceof TypeError && /directory does not exist/.test(error.message)) {
    return 'its folder does not exist';
  }
  return describeError(error);
}
