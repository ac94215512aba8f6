/**
 * Replacing a file atomically (temp file, fsync, rename, fsync of the folder)
 * from pieces, so a 15 MB results document never exists as one string.
 *
 * write-file-atomic does the same from one string or buffer; this keeps its
 * recipe but takes the content as buffers (the caller caches the parts that
 * do not change) and writes them without blocking the process. Every write
 * loops until all bytes are out: on a nearly full disk write(2) returns a
 * short count rather than an error, and a short temp file must never be
 * renamed over a good one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

import { isProcessAlive } from './process-alive.js';

const fsyncAsync = promisify(fsync);

/**
 * A new file only: never one that exists, never through a symlink someone
 * planted under its name.
 */
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Most buffers handed to one writev(2) (IOV_MAX is 1024 on Linux). */
const MAX_IOV = 1024;

/**
 * Replaces `path` with `chunks`, atomically: they are written to a new temp
 * file beside it, which is fsynced and renamed over `path`. The chunks must
 * not change until the promise settles. On any failure the temp file is
 * removed and `path` is left as it was.
 */
export async function replaceFile(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const file = await FileReplacement.open(path);
  try {
    await file.write(chunks);
  } catch (error) {
    await file.abort();
    throw error;
  }
  await file.commit();
}

/**
 * A file replaced atomically from pieces written one after another, for
 * content too big to hold at once (a report of a million rows): the temp
 * file grows until `commit` renames it over `path`, or `abort` removes it.
 */
export class FileReplacement {
  readonly #path: string;
  readonly #temp: string;
  readonly #handle: FileHandle;

  private constructor(path: string, temp: string, handle: FileHandle) {
    this.#path = path;
    this.#temp = temp;
    this.#handle = handle;
  }

  static async open(path: string): Promise<FileReplacement> {
    const temp = tempPathOf(path);
    return new FileReplacement(path, temp, await open(temp, CREATE_NEW, 0o644));
  }

  /** Writes all of `chunks` after what was written, or throws what stopped it. */
  async write(chunks: readonly Uint8Array[]): Promise<void> {
    await writeAll(this.#handle, chunks);
  }

  /** fsync, rename over `path`, fsync of the folder; on failure the temp file goes. */
  async commit(): Promise<void> {
    let renamed = false;
    try {
      try {
        await this.#handle.sync();
      } finally {
        await this.#handle.close();
      }
      await rename(this.#temp, this.#path);
      renamed = true;
    } finally {
      if (!renamed) await rm(this.#temp, { force: true });
    }
    await fsyncFolder(dirname(this.#path));
  }

  /** Removes the temp file; `path` stays as it was. */
  async abort(): Promise<void> {
    await this.#handle.close().catch(() => undefined);
    await rm(this.#temp, { force: true });
  }
}

/** Writes all of `data` at the file's position, or throws what stopped it. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  const allowed = spaceFor(data.length);
  let offset = 0;
  while (offset < allowed) {
    const written = writeSync(fd, data, offset, allowed - offset);
    // A regular file takes at least one byte or fails; guard against a loop.
    if (written <= 0) throw noProgress();
    offset += written;
  }
  if (allowed < data.length) throw noProgress();
}

/**
 * Removes temp files that earlier runs on `path` left behind (killed while
 * saving). The caller holds the file's lock, so no live run is writing one;
 * a temp file whose pid still lives on this host is kept all the same.
 * @returns how many were removed.
 */
export function removeStaleTemps(path: string): number {
  const prefix = `.${basename(path)}.`;
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    // `<pid>.tmp` (older imgjob) or `<pid>.<random>.tmp`.
    const match = /^(\d+)(?:\.[0-9a-f]+)?\.tmp$/.exec(name.slice(prefix.length));
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    // A symlink planted under such a name goes too; its target is untouched.
    rmSync(join(dirname(path), name), { force: true });
    removed++;
  }
  return removed;
}

/** `.<name>.<pid>.<16 random hex digits>.tmp`: not guessable in advance. */
function tempPathOf(path: string): string {
  const suffix = randomBytes(8).toString('hex');
  return join(dirname(path), `.${basename(path)}.${process.pid}.${suffix}.tmp`);
}

async function writeAll(handle: FileHandle, chunks: readonly Uint8Array[]): Promise<void> {
  injectedWriteFault();
  let pending = chunks.filter((chunk) => chunk.length > 0);
  const total = pending.reduce((sum, chunk) => sum + chunk.length, 0);
  const allowed = spaceFor(total);
  if (allowed < total) pending = takeBytes(pending, allowed);
  while (pending.length > 0) {
    const batch = pending.slice(0, MAX_IOV);
    const { bytesWritten } = await handle.writev(batch);
    if (bytesWritten <= 0) throw noProgress();
    pending = dropBytes(pending, bytesWritten);
  }
  if (allowed < total) throw noProgress();
}

/** The first `count` bytes of `chunks`. */
function takeBytes(chunks: readonly Uint8Array[], count: number): Uint8Array[] {
  const taken: Uint8Array[] = [];
  let left = count;
  for (const chunk of chunks) {
    if (left <= 0) break;
    taken.push(chunk.subarray(0, left));
    left -= Math.min(left, chunk.length);
  }
  return taken;
}

/** What is left of `chunks` once their first `count` bytes are written. */
function dropBytes(chunks: readonly Uint8Array[], count: number): Uint8Array[] {
  let left = count;
  let index = 0;
  while (index < chunks.length && left >= (chunks[index]?.length ?? 0)) {
    left -= chunks[index]?.length ?? 0;
    index++;
  }
  const rest = chunks.slice(index);
  const first = rest[0];
  if (first !== undefined && left > 0) rest[0] = first.subarray(left);
  return rest;
}

function noProgress(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device (write wrote nothing)'), {
    code: 'ENOSPC',
  });
}

/**
 * Test seam, documented in README "Durability", for machines where a test
 * cannot mount a small tmpfs: `IMGJOB_TEST_FS_LIMIT=<bytes>` lets this
 * process write that many bytes to its results files in all; the write that
 * crosses it comes up short, as on a nearly full disk, then fails ENOSPC.
 */
let spaceLeft: number | undefined = process.env.IMGJOB_TEST_FS_LIMIT
  ? Number(process.env.IMGJOB_TEST_FS_LIMIT)
  : undefined;

function spaceFor(bytes: number): number {
  if (spaceLeft === undefined) return bytes;
  const allowed = Math.max(0, Math.min(bytes, spaceLeft));
  spaceLeft -= allowed;
  return allowed;
}

/**
 * Test seam, documented in README "Durability": `IMGJOB_TEST_WRITE_FAULT=EIO`
 * makes every write of a results file (snapshot or journal) fail with that
 * errno code, to reach the paths of I/O errors no test can cause on a
 * healthy disk.
 */
// Read once: the journal asks on every write, and process.env is slow to read.
const writeFault = process.env.IMGJOB_TEST_WRITE_FAULT;

export function injectedWriteFault(): void {
  const code = writeFault;
  if (code) throw Object.assign(new Error(`${code}: injected write fault`), { code });
}

// The rename is durable only once the folder's entry is on disk too. Some
// filesystems refuse fsync on a folder; the rename is still atomic there.
async function fsyncFolder(folder: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    await fsyncAsync(fd);
  } catch {
    // See above.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
