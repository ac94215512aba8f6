/**
 * `serve` and its database under faults (issue 13 §5): a full disk (a real
 * small tmpfs), a read-only database, a SQLite file of another program, a
 * damaged file.
 *
 * @module-tag e2e
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Sqlite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { parseManifest } from '../src/input/manifest.js';
import { createAddressGuard } from '../src/download/address-guard.js';
import { BatchWriter } from '../src/serve/batch-writer.js';
import { openDatabase } from '../src/serve/db.js';
import type { JobRecords } from '../src/serve/job-records.js';
import { startServer } from '../src/serve/server.js';
import { runMain } from './helpers/main.js';
import { call, manifestOf, submit, submitOk, waitForJob } from './helpers/serve-client.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-disk-'));
let images: FaultServer;
beforeAll(async () => {
  images = await startFaultServer();
});
afterAll(async () => {
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

const OPTIONS = serveOptions();

/** A small tmpfs of its own, or why there cannot be one here. */
function mountTmpfs(name: string, size: string): { dir: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not root';
  const dir = join(folder, name);
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    return `mount failed: ${String(error)}`;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir]);
    },
  };
}

/** The tests below need a tmpfs: under CI a missing one fails them, elsewhere they skip. */
function tmpfsOrSkip(
  name: string,
  size: string,
  skip: (note: string) => void,
): { dir: string; unmount: () => void } {
  const mounted = mountTmpfs(name, size);
  if (typeof mounted === 'string') {
    if (process.env.CI === 'true') throw new Error(`needs a tmpfs (run as root): ${mounted}`);
    skip(`needs a tmpfs mounted as root: ${mounted}`);
    throw new Error('unreachable');
  }
  return mounted;
}

/** Fills the file system of `dir` to the last block; returns the filler's path. */
function fillDisk(dir: string, name = 'filler'): string {
  const path = join(dir, name);
  const fd = openSync(path, 'a');
  const block = Buffer.alloc(4096, 1);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return path;
}

describe('a full disk', () => {
  it('submit answers 503, /healthz turns unhealthy, one log line per state change, and all recovers', async (context) => {
    const tmpfs = tmpfsOrSkip('full', '2m', (note) => context.skip(note));
    const log: string[] = [];
    const server = await startServer({
      port: 0,
      dbPath: join(tmpfs.dir, 'jobs.db'),
      options: OPTIONS,
      addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
      writer: { intervalMs: 10 },
      log: (line) => log.push(line),
    });
    try {
      const running = await submitOk(
        server.url,
        manifestOf((s, i) => images.url(`/gate/disk/png/${s}/${i}.png`), 4, 100),
      );
      const filler = fillDisk(tmpfs.dir);

      const big = manifestOf((s, i) => images.url(`/png/big/${s}/${i}.png`), 20, 100);
      const refused = await submit(server.url, big);
      expect(refused).toMatchObject({
        status: 503,
        body: {
          error: 'the server cannot write to its database: the disk is full; try again later',
        },
      });
      expect(refused.headers.get('retry-after')).toBe('5');
      fillDisk(tmpfs.dir, 'filler2'); // whatever the failed write let go of

      const unhealthy = await call(server.url, '/healthz');
      expect(unhealthy).toMatchObject({
        status: 503,
        body: { status: 'unhealthy', reason: 'cannot write to the database: the disk is full' },
      });

      // The running job's results cannot be written either: the writer retries.
      images.gate('disk').open();
      await vi.waitFor(() => {
        expect(log).toContain(
          'error: cannot write to the database: the disk is full (retrying until it works)',
        );
      });
      // Answers still come (from memory) while the writes fail.
      const job = await waitForJob(server.url, running, (document) => document.counts.done === 400);
      expect(job.status).toBe('completed');
      expect((await call(server.url, '/healthz')).status).toBe(503);

      rmSync(filler);
      rmSync(join(tmpfs.dir, 'filler2'));
      await vi.waitFor(async () => {
        expect((await call(server.url, '/healthz')).body).toMatchObject({ status: 'ok' });
      });
      expect(await submitOk(server.url, big)).toEqual(expect.any(Number));

      const storage = log.filter((line) => /database|disk/.test(line));
      // The running job's writes may fail before or after the submit does.
      expect(storage).toHaveLength(3);
      expect(storage.slice(0, 2).sort()).toEqual([
        'error: a submit was refused: the disk is full',
        'error: cannot write to the database: the disk is full (retrying until it works)',
      ]);
      expect(storage[2]).toMatch(
        /^the database takes writes again \(after \d+ failed tr(y|ies)\)$/,
      );
      expect(log.join('\n')).not.toMatch(/^\s+at /m);
      expect(log.join('\n')).not.toContain('internal error');
    } finally {
      await server.close();
      tmpfs.unmount();
    }
  }, 60_000);

  it('the batch writer reports an outage once, and its end once', async () => {
    let failing = true;
    let tries = 0;
    const records = {
      write: () => {
        tries++;
        if (failing)
          throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      },
    } as unknown as JobRecords;
    const onError = vi.fn();
    const onRecovered = vi.fn();
    const writer = new BatchWriter(records, { intervalMs: 1, onError, onRecovered });
    const state = JobState.create(
      parseManifest(
        '{"count": 1, "visits": [{"store_id": "A", "image_url": ["http://x.test/1.png"]}]}',
        'm',
      ),
      '1',
      { gpu_delay: '0', seed: null, header_only: false, max_bytes: 1, store_master: null },
      new Date(),
    );
    writer.watch(state);
    state.setStoreStatus(0, 'ongoing');
    const written = writer.written();
    await vi.waitFor(() => {
      expect(tries).toBeGreaterThanOrEqual(10);
    });
    expect(writer.failing).toBe(true);
    expect(onError).toHaveBeenCalledTimes(1);
    failing = false;
    await written;
    expect(onRecovered).toHaveBeenCalledTimes(1);
    expect(onRecovered.mock.calls[0]?.[0]).toBeGreaterThanOrEqual(10);
    expect(writer.failing).toBe(false);
  });
});

describe('the database file', () => {
  it('read-only: the CLI says so and exits 2', async (context) => {
    const tmpfs = tmpfsOrSkip('ro', '2m', (note) => context.skip(note));
    try {
      const path = join(tmpfs.dir, 'jobs.db');
      openDatabase(path).close();
      execFileSync('mount', ['-o', 'remount,ro', tmpfs.dir]);
      // main() in this process: the refusal comes before any server starts.
      const { code, stderr } = await runMain(['serve', '--db', path, '--port', '0']);
      expect(code).toBe(2);
      expect(stderr.trim()).toBe(
        `imgjob: cannot use database ${path}: it is read-only: on a read-only file system`,
      );
      const fresh = join(tmpfs.dir, 'new.db');
      const second = await runMain(['serve', '--db', fresh, '--port', '0']);
      expect(second.code).toBe(2);
      expect(second.stderr).toContain(
        `cannot use database ${fresh}: its folder is read-only: on a read-only file system`,
      );
    } finally {
      tmpfs.unmount();
    }
  });

  it("refuses another program's SQLite file, and leaves it as it was", () => {
    const path = join(folder, 'theirs.db');
    const theirs = new Sqlite(path);
    theirs.exec(
      "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT); INSERT INTO notes (text) VALUES ('mine')",
    );
    theirs.close();
    const before = readFileSync(path);
    expect(() => openDatabase(path)).toThrow(
      `cannot use database ${path}: it is not an imgjob database (it holds other tables: notes); give --db a new file`,
    );
    const after = new Sqlite(path, { readonly: true });
    expect(after.prepare(`SELECT name FROM sqlite_schema WHERE type = 'table'`).all()).toEqual([
      { name: 'notes' },
    ]);
    expect(after.pragma('user_version', { simple: true })).toBe(0);
    after.close();
    expect(readFileSync(path).subarray(100)).toEqual(before.subarray(100));
  });

  it('opens an empty SQLite file (made by hand) as a new database', () => {
    const path = join(folder, 'empty.db');
    new Sqlite(path).close();
    const db = openDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBeGreaterThan(0);
    db.close();
  });

  it('refuses a damaged file at start (quick_check)', () => {
    const path = join(folder, 'damaged.db');
    const db = openDatabase(path);
    db.pragma('journal_mode = DELETE');
    db.close();
    const bytes = readFileSync(path);
    const pageSize = bytes.readUInt16BE(16);
    // Scribble over the second page (a table's b-tree), keeping the header whole.
    bytes.fill(0x5a, pageSize, pageSize * 2);
    writeFileSync(path, bytes);
    expect(() => openDatabase(path)).toThrow(
      new RegExp(`^cannot use database ${path}: it is damaged`),
    );
  });
});
