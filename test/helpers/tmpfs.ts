/**
 * Real small filesystems for the durability tests: a tmpfs of a chosen size
 * (a disk that fills up) or a read-only one, mounted on a folder under the
 * system temp folder. Mounting needs root (as in CI's container); elsewhere
 * the tests that need one skip with one line, and under CI=true they fail.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type Tmpfs = {
  readonly dir: string;
  /** Bytes a non-root writer may still use. */
  free(): number;
  /** Fills it with `<dir>/filler` until only `leave` bytes (about: pages are 4 KiB) are free. */
  fill(leave?: number): void;
  /** Grows (or shrinks) it, keeping its files: "space was freed". */
  resize(size: string): void;
  /** Remounts it read-only, keeping its files. */
  remountReadOnly(): void;
  /** Unmounts it and removes the folder. */
  unmount(): void;
};

/** The tmpfs mounted and not unmounted yet: see `unmountAll`. */
const mounted = new Set<Tmpfs>();

/**
 * Unmounts every tmpfs still mounted, for an `afterAll`: a case that timed
 * out never reached the `finally` that unmounts its own.
 */
export function unmountAll(): void {
  for (const tmpfs of mounted) tmpfs.unmount();
}

/** Why mounting is impossible here, or undefined when it works. */
export function tmpfsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  try {
    const probe = mountTmpfs('64k');
    probe.unmount();
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`;
  }
}

/** Mounts a tmpfs of `size` (`700k`, `2m`), read-only with `readOnly`. */
export function mountTmpfs(size: string, options: { readOnly?: boolean } = {}): Tmpfs {
  const dir = mkdtempSync(join(tmpdir(), 'imgjob-tmpfs-'));
  const flags = [`size=${size}`, 'mode=0777', ...(options.readOnly ? ['ro'] : [])].join(',');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', flags, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const tmpfs: Tmpfs = {
    dir,
    free() {
      const stats = statfsSync(dir);
      return stats.bavail * stats.bsize;
    },
    fill(leave = 0) {
      const fd = openSync(join(dir, 'filler'), 'a');
      try {
        const page = Buffer.alloc(4096);
        while (this.free() > leave) {
          const chunk = Math.min(1 << 20, Math.max(4096, this.free() - leave));
          writeSync(fd, Buffer.alloc(chunk).subarray(0, chunk), 0, chunk);
        }
        // Page by page into what is left, to the last page.
        if (leave === 0) {
          for (;;) {
            try {
              if (writeSync(fd, page) <= 0) break;
            } catch {
              break;
            }
          }
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
    },
    resize(newSize) {
      execFileSync('mount', ['-o', `remount,size=${newSize}`, dir], { stdio: 'pipe' });
    },
    remountReadOnly() {
      execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' });
    },
    unmount() {
      if (!mounted.delete(tmpfs)) return;
      try {
        // Lazily (-l): a file a failed case left open does not keep it mounted.
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  mounted.add(tmpfs);
  return tmpfs;
}

/**
 * `describe`-level gate: undefined when tmpfs tests can run; otherwise the
 * line to skip with. Under CI=true an impossible mount throws: CI must run them.
 */
export function tmpfsSkipReason(): string | undefined {
  const reason = tmpfsUnavailable();
  if (reason !== undefined && process.env.CI) {
    throw new Error(`CI=true but the tmpfs durability tests cannot run: ${reason}`);
  }
  return reason;
}
