/**
 * One run per results file: `<results>.lock`, created with O_EXCL and
 * holding the pid and host of its run, is taken before any download and
 * removed at the end. A lock whose run is gone (same host, dead pid) is taken
 * over; readers (`imgjob status`) never look at it. Anything at the lock's
 * name that is not a regular file (a FIFO, a device, a symbolic link, a
 * folder) is refused as such: it is never opened in a way that could block
 * or follow it.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  openSync,
  readlinkSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  type Stats,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

import { writeAllSync } from '../utils/atomic-file.js';
import { isProcessAlive } from '../utils/process-alive.js';
import { InputError } from '../utils/errors.js';
import { lockPathOf } from './paths.js';

export type ResultsLock = {
  readonly path: string;
  /** Removes the lock file if it is still this lock's; idempotent. */
  release(): void;
};

type Holder = { readonly pid: number; readonly host: string; readonly token: string };

/** What is at the lock's name. */
type LockFile =
  | { readonly kind: 'missing' }
  | { readonly kind: 'held'; readonly holder: Holder }
  /** A regular file without a readable holder: being written, or left half-written. */
  | { readonly kind: 'unreadable' }
  /** Not a lock file at all: what it is, in words. */
  | { readonly kind: 'foreign'; readonly what: string };

const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
const READ_LOCK = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** A holder is well under this; more is not a lock file of ours. */
const MAX_LOCK_BYTES = 4096;

/** A lock file with no readable holder is being created, until it is this old. */
const UNWRITTEN_GRACE_MS = 10_000;

/** Locks held by this process, released even by `process.exit`. */
const held = new Set<ResultsLock>();
let exitHookInstalled = false;

/**
 * Takes the lock of the results file `resultsPath`.
 * @throws {InputError} when another live run holds it, or its folder cannot
 * be written (exit 2).
 */
export function lockResults(resultsPath: string): ResultsLock {
  const path = lockPathOf(resultsPath);
  const holder: Holder = {
    pid: process.pid,
    host: hostname(),
    token: randomBytes(8).toString('hex'),
  };
  const text = `${JSON.stringify({ ...holder, started_at: new Date().toISOString() })}\n`;
  // Each pass takes the lock, refuses, removes a stale one (which another
  // run may also be racing for), or waits a moment for a lock just created
  // to get its holder written: a few passes settle it.
  for (let pass = 0; pass < 50; pass++) {
    if (tryCreate(path, text, resultsPath)) {
      const lock: ResultsLock = {
        path,
        release() {
          if (!held.delete(lock)) return;
          if (readHolder(path)?.token === holder.token) rmSync(path, { force: true });
        },
      };
      held.add(lock);
      installExitHook();
      return lock;
    }
    const found = readLockFile(path);
    if (found.kind === 'missing') continue;
    if (found.kind === 'foreign') throw foreignError(resultsPath, path, found.what);
    const other = found.kind === 'held' ? found.holder : undefined;
    if (isStale(other, path)) takeOverStale(path, other);
    else if (other !== undefined) throw lockedError(resultsPath, other);
    else sleepSync(2);
  }
  throw lockedError(resultsPath, readHolder(path));
}

// The holder is written to a file of its own first and then hard-linked to
// the lock's name: link(2) fails with EEXIST like O_EXCL, and a lock file
// that exists is always whole, so a run that is refused can always say who
// holds it.
function tryCreate(path: string, text: string, resultsPath: string): boolean {
  const staged = `${path}.${randomBytes(6).toString('hex')}`;
  try {
    const fd = openSync(staged, CREATE_NEW, 0o644);
    try {
      writeAllSync(fd, Buffer.from(text));
    } finally {
      closeSync(fd);
    }
    linkSync(staged, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw cannotWrite(resultsPath, error);
  } finally {
    rmSync(staged, { force: true });
  }
}

/**
 * What is at the lock's name, opened without following a symbolic link and
 * without waiting (a FIFO); only a regular file is read, and only its start.
 */
function readLockFile(path: string): LockFile {
  let fd: number;
  try {
    fd = openSync(path, READ_LOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { kind: 'missing' };
    // O_NOFOLLOW refuses a symbolic link with ELOOP (Linux, macOS) or EMLINK (FreeBSD).
    if (code === 'ELOOP' || code === 'EMLINK') return { kind: 'foreign', what: symlinkWhat(path) };
    // Being replaced (EACCES on a lock another user just made, say): nothing to read now.
    return { kind: 'unreadable' };
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return { kind: 'foreign', what: kindOf(stats) };
    const buffer = Buffer.alloc(MAX_LOCK_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const holder = parseHolder(buffer.toString('utf8', 0, length));
    return holder === undefined ? { kind: 'unreadable' } : { kind: 'held', holder };
  } finally {
    closeSync(fd);
  }
}

function readHolder(path: string): Holder | undefined {
  const found = readLockFile(path);
  return found.kind === 'held' ? found.holder : undefined;
}

/** `a symbolic link to /dev/zero (a character device)`, without opening the target. */
function symlinkWhat(path: string): string {
  let target: string;
  try {
    target = readlinkSync(path);
  } catch {
    return 'a symbolic link';
  }
  let stats: Stats;
  try {
    stats = statSync(path);
  } catch {
    return `a symbolic link to ${JSON.stringify(target)}, which does not exist`;
  }
  return `a symbolic link to ${JSON.stringify(target)} (${kindOf(stats)})`;
}

function kindOf(stats: Stats): string {
  if (stats.isFile()) return 'a regular file';
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    if (
      typeof value.pid === 'number' &&
      typeof value.host === 'string' &&
      typeof value.token === 'string'
    ) {
      return { pid: value.pid, host: value.host, token: value.token };
    }
  } catch {
    // Not (yet) whole.
  }
  return undefined;
}

function isStale(holder: Holder | undefined, path: string): boolean {
  if (holder === undefined) {
    // Created but never written: its run died in between, or is just now writing it.
    try {
      return Date.now() - statSync(path).mtimeMs > UNWRITTEN_GRACE_MS;
    } catch {
      return false;
    }
  }
  // A pid of another host cannot be checked: that lock is taken as live.
  if (holder.host !== hostname()) return false;
  // Our own pid on a lock this process does not hold: left by an earlier
  // process that had the same pid (a restarted container).
  if (holder.pid === process.pid) return true;
  return !isProcessAlive(holder.pid);
}

/**
 * Removes a stale lock so that creating it can be tried again. Moved aside
 * first, and removed only if what was moved is the stale lock seen: a run
 * racing for the same stale lock may already have replaced it with its own,
 * which is then put back.
 */
function takeOverStale(path: string, stale: Holder | undefined): void {
  const aside = `${path}.${randomBytes(8).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return; // Gone already: another run removed it.
  }
  const moved = readHolder(aside);
  if (moved?.token === stale?.token) {
    rmSync(aside, { force: true });
    return;
  }
  // Not the stale lock: a live run's. Back where it was, unless a third run
  // took the place meanwhile (then that one holds the lock).
  try {
    renameSync(aside, path);
  } catch {
    rmSync(aside, { force: true });
  }
}

function lockedError(resultsPath: string, holder: Holder | undefined): InputError {
  const where = holder && holder.host !== hostname() ? ` on ${holder.host}` : '';
  const who = holder ? ` (pid ${holder.pid}${where})` : '';
  // Worded like the check of the file's `writer`, which older runs leave.
  return new InputError(
    'E_OUTPUT_EXISTS',
    `${resultsPath} is being written by a running imgjob${who}; wait for it to end or stop it, or choose another file with -o (lock: ${lockPathOf(resultsPath)})`,
  );
}

function foreignError(resultsPath: string, lockPath: string, what: string): InputError {
  return new InputError(
    'E_OUTPUT_EXISTS',
    `cannot lock ${resultsPath}: ${lockPath} is ${what}, not an imgjob lock file; remove it, or choose another file with -o`,
  );
}

function cannotWrite(resultsPath: string, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why =
    code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'EROFS'
        ? 'the file system is read-only'
        : code === 'ENOSPC' || code === 'EDQUOT'
          ? 'the disk is full'
          : code === 'ENOENT' || code === 'ENOTDIR'
            ? 'no such folder'
            : undefined;
  if (why === undefined) throw error;
  return new InputError(
    'E_USAGE',
    `cannot write ${resultsPath}: ${why} in ${dirname(resultsPath)}`,
    { cause: error },
  );
}

/** Blocks for `ms`: only while another run writes the few bytes of its lock. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lock of [...held]) lock.release();
  });
}
