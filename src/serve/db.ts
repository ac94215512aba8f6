/**
 * Opens the serve database: SQLite through better-sqlite3, in WAL mode, at
 * the latest schema.
 */
import { accessSync, constants } from 'node:fs';
import { dirname } from 'node:path';

import Sqlite from 'better-sqlite3';
import type { Database } from 'better-sqlite3';

import { describeError, ImgjobError, InputError } from '../utils/errors.js';
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
 * Before it is used, the file must be imgjob's (a SQLite file of another
 * program is refused, never given imgjob's tables) and whole (`PRAGMA
 * quick_check`).
 *
 * @throws {InputError} `E_USAGE` when the file cannot be opened, is in use,
 *   is read-only, is damaged, or is not an imgjob database.
 */
export function openDatabase(path: string): Database {
  let db: Database | undefined;
  try {
    checkWritable(path);
    // A server that was just stopped may take a moment to let go of the file.
    db = new Sqlite(path, { timeout: 1000 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    checkOwnership(db);
    checkIntegrity(db);
    migrate(db);
    // SQLite opens a file it cannot write read-only without a word: find out now.
    const version = db.pragma('user_version', { simple: true }) as number;
    db.pragma(`user_version = ${version}`);
    return db;
  } catch (error) {
    db?.close();
    throw new InputError('E_USAGE', `cannot use database ${path}: ${reasonOf(error)}`, {
      cause: error,
    });
  }
}

/** A database that is not imgjob's: refused as it is, never changed. */
class ForeignDatabaseError extends ImgjobError {
  constructor(message: string, options?: ErrorOptions) {
    super('E_DATABASE', message, options);
  }
}

/**
 * A new file has no tables; an imgjob database has a `user_version` and only
 * imgjob's tables. A file with tables and `user_version` 0 belongs to another
 * program: migrating it would add imgjob's tables to someone else's data.
 */
function checkOwnership(db: Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version !== 0) return;
  const tables = (
    db
      .prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
      .all() as { name: string }[]
  ).map((row) => row.name);
  if (tables.length === 0) return;
  const shown = tables.slice(0, 5).join(', ') + (tables.length > 5 ? ', …' : '');
  throw new ForeignDatabaseError(
    `it is not an imgjob database (it holds other tables: ${shown}); give --db a new file`,
  );
}

/**
 * SQLite reports a file it cannot write as a lock or I/O error, or opens it
 * read-only without a word; ask the file system first, in words a user acts on.
 */
function checkWritable(path: string): void {
  const readOnly = (what: string, error: unknown): ForeignDatabaseError => {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EROFS' ? 'on a read-only file system' : 'not writable (permissions)';
    return new ForeignDatabaseError(`${what} is read-only: ${why}`, { cause: error });
  };
  // The WAL and its index live beside the file: the folder must take new files too.
  const targets: readonly (readonly [string, string])[] = [
    ['it', path],
    ['its folder', dirname(path)],
  ];
  for (const [what, target] of targets) {
    try {
      accessSync(target, constants.W_OK);
    } catch (error) {
      // A new file, or a missing folder (said in better words below).
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw readOnly(what, error);
    }
  }
}

/** A damaged file is found at start, not mid-job. */
function checkIntegrity(db: Database): void {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  const problems = rows.map((row) => row.quick_check).filter((text) => text !== 'ok');
  if (problems.length > 0) {
    throw new ForeignDatabaseError(
      `it is damaged (quick_check: ${problems.slice(0, 3).join('; ')}); restore it from a backup or give --db a new file`,
    );
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof ForeignDatabaseError) return error.message;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_READONLY'))
    return 'it is read-only (check the permissions of the file, its folder and its file system)';
  if (code === 'SQLITE_CORRUPT')
    return 'it is damaged; restore it from a backup or give --db a new file';
  if (code === 'SQLITE_FULL') return 'the disk is full';
  if (code === 'SQLITE_BUSY') return 'it is in use by another imgjob serve';
  if (code === 'SQLITE_NOTADB') return 'it is not a database';
  if (code === 'SQLITE_CANTOPEN') return 'cannot open the file';
  // better-sqlite3 checks the folder itself, with a TypeError of its own.
  if (error instanceof TypeError && /directory does not exist/.test(error.message)) {
    return 'its folder does not exist';
  }
  return describeError(error);
}
