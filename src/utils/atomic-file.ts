/**
 * Replacing a file atomically (temp file, fsync, rename, fsync of the folder)
 * from pieces, so a 15 MB results document never exists as one string.
 *
 * write-file-atomic does the same from one string or buffer; this keeps its
 * recipe but takes the content as pieces, and can leave the slow part (the
 * fsyncs and the rename) to run in the background.
 */
import { closeSync, fsync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const fsyncAsync = promisify(fsync);

/** Pieces are joined into writes of about this size. */
const WRITE_CHUNK = 1 << 20;

/** A file written in full but not yet in place: `commit()` puts it there. */
export type StagedFile = {
  /** fsync, rename over the target, fsync of the folder: in the background. */
  commit(): Promise<void>;
  /** The same, blocking. */
  commitSync(): void;
};

/**
 * Writes `pieces` to a temp file beside `path`, now and synchronously (so
 * the content is the state of this instant), and returns the staged file.
 */
export function stageFile(path: string, pieces: Iterable<string>): StagedFile {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', 0o644);
  let open = true;
  const closeOnce = (): void => {
    if (open) closeSync(fd);
    open = false;
  };
  try {
    let buffer = '';
    for (const piece of pieces) {
      buffer += piece;
      if (buffer.length >= WRITE_CHUNK) {
        writeSync(fd, buffer);
        buffer = '';
      }
    }
    writeSync(fd, buffer);
  } catch (error) {
    closeOnce();
    rmSync(temp, { force: true });
    throw error;
  }
  return {
    async commit() {
      try {
        await fsyncAsync(fd);
      } finally {
        closeOnce();
      }
      await rename(temp, path);
      await fsyncFolder(dirname(path));
    },
    commitSync() {
      try {
        fsyncSync(fd);
      } finally {
        closeOnce();
      }
      renameSync(temp, path);
      fsyncFolderSync(dirname(path));
    },
  };
}

// The rename is durable only once the folder's entry is on disk too. Some
// filesystems refuse fsync on a folder; the rename is still atomic there.
function fsyncFolderSync(folder: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    fsyncSync(fd);
  } catch {
    // See above.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

async function fsyncFolder(folder: string): Promise<void> {
  let fd: number | undefined;
  try {
    fd = openSync(folder, 'r');
    await fsyncAsync(fd);
  } catch {
    // See fsyncFolderSync.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
