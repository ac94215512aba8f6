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

const fsyncAsync = promisify(fsync);

/**
 * A new file only: never one that exists, never through a symlink someone
 * planted under its name. Readable too: the caller may copy from it later.
 */
const CREATE_NEW = constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Most buffers handed to one writev(2) (IOV_MAX is 1024 on Linux). */
const MAX_IOV = 1024;
/** Bytes gathered before a write. */
const MAX_BATCH = 4 << 20;
/** Bytes of a range copied per read and write. */
const COPY_BUFFER = 1 << 20;

/** Bytes of an open file, copied into the new one by `replaceFile`. */
export type FileRange = {
  readonly file: FileHandle;
  readonly offset: number;
  readonly length: number;
};

/** A piece of a file's content: bytes, or a range of another file. */
export type Piece = Uint8Array | FileRange;

/**
 * Replaces `path` with `pieces`, atomically: they are written to a new temp
 * file beside it, which is fsynced and renamed over `path`. The pieces must
 * not change until the promise settles. On any failure the temp file is
 * removed and `path` is left as it was.
 *
 * @returns the new file, open for reading (its ranges can be pieces of the
 * next replacement); the caller closes it.
 */
export async function replaceFile(path: string, pieces: readonly Piece[]): Promise<FileHandle> {
  const temp = tempPathOf(path);
  const handle = await open(temp, CREATE_NEW, 0o644);
  let renamed = false;
  try {
    await writeAll(handle, pieces);
    await handle.sync();
    await rename(temp, path);
    renamed = true;
  } finally {
    if (!renamed) {
      await handle.close();
      await rm(temp, { force: true });
    }
  }
  await fsyncFolder(dirname(path));
  return handle;
}

/** Writes all of `data` at the file's position, or throws what stopped it. */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) {
    const written = writeSync(fd, data, offset, data.length - offset);
    // A regular file takes at least one byte or fails; guard against a loop.
    if (written <= 0) throw noProgress();
    offset += written;
  }
}

/**
 * Writes all of `text` (UTF-8) at the file's position, or throws. The
 * common case, all of it at once, makes no Buffer: a journal is written
 * thousands of times a second.
 */
export function writeTextSync(fd: number, text: string): void {
  const written = writeSync(fd, text);
  const total = Buffer.byteLength(text);
  if (written < total) writeAllSync(fd, Buffer.from(text).subarray(written));
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

/** Whether a process of this host with `pid` is running. */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `.<name>.<pid>.<16 random hex digits>.tmp`: not guessable in advance. */
function tempPathOf(path: string): string {
  const suffix = randomBytes(8).toString('hex');
  return join(dirname(path), `.${basename(path)}.${process.pid}.${suffix}.tmp`);
}

async function writeAll(handle: FileHandle, pieces: readonly Piece[]): Promise<void> {
  injectedWriteFault();
  let batch: Uint8Array[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    await writeBuffers(handle, batch);
    batch = [];
    bytes = 0;
  };
  // Ranges are copied through one buffer, written before it is reused: a
  // 15 MB file copied a second must not leave 15 MB of garbage a second.
  let scratch: Buffer | undefined;
  for (const piece of pieces) {
    if (piece instanceof Uint8Array) {
      if (piece.length === 0) continue;
      batch.push(piece);
      bytes += piece.length;
      if (batch.length >= MAX_IOV || bytes >= MAX_BATCH) await flush();
      continue;
    }
    scratch ??= Buffer.allocUnsafeSlow(COPY_BUFFER);
    for (let done = 0; done < piece.length;) {
      const length = Math.min(COPY_BUFFER, piece.length - done);
      batch.push(await readInto(scratch, piece.file, piece.offset + done, length));
      await flush();
      done += length;
    }
  }
  await flush();
}

async function readInto(
  buffer: Buffer,
  file: FileHandle,
  offset: number,
  length: number,
): Promise<Buffer> {
  for (let read = 0; read < length;) {
    const { bytesRead } = await file.read(buffer, read, length - read, offset + read);
    if (bytesRead <= 0) throw new Error(`a file copied from ended early (at ${offset + read})`);
    read += bytesRead;
  }
  return buffer.subarray(0, length);
}

async function writeBuffers(handle: FileHandle, chunks: readonly Uint8Array[]): Promise<void> {
  let pending = [...chunks];
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending.slice(0, MAX_IOV));
    if (bytesWritten <= 0) throw noProgress();
    pending = dropBytes(pending, bytesWritten);
  }
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
 * Test seam, documented in README "Durability": `IMGJOB_TEST_WRITE_FAULT=EIO`
 * makes every write of a results file (snapshot or journal) fail with that
 * errno code, to reach the paths of I/O errors no test can cause on a
 * healthy disk.
 */
export function injectedWriteFault(): void {
  const code = process.env.IMGJOB_TEST_WRITE_FAULT;
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
