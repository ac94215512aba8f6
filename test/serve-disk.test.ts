/**
 * `serve` and its database under faults (issue 13 §5): a full disk (a real
 * small tmpfs), a read-only database, a SQLite file of another program, a
 * damaged file.
 *
 * @module-tag e2e
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { mountTmpfs, tmpfsSkipReason, unmountAll } from './helpers/tmpfs.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-disk-'));
let images: FaultServer;
beforeAll(async () => {
  images = await startFaultServer();
});
afterAll(async () => {
  unmountAll();
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

/** Why the cases that need a tmpfs skip here (under CI=true they cannot: it throws). */
const noTmpfs = tmpfsSkipReason();

const OPTIONS = serveOptions();

describe('a full disk', () => {
  it('submit answers 503, /healthz turns unhealthy, one log line per state change, and all recovers', async (context) => {
    if (noTmpfs !== undefined) return context.skip(noTmpfs);
    const tmpfs = mountTmpfs('2m');
    const log: string[] = [];
    const server = await startServer({
      port: 0,
      dbPath: join(tmpfs.dir, 'jobs.db'),
      options: OPTIONS,
      addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
      // While the disk is full the writer retries its whole batch every interval:
      // every 10 ms that took ~2 s more wall on a loaded machine than every 50 ms.
      writer: { intervalMs: 50 },
      log: (line) => log.push(line),
    });
    try {
      const running = await submitOk(
        server.url,
        manifestOf((s, i) => images.url(`/gate/disk/png/${s}/${i}.png`), 4, 100),
      );
      tmpfs.fill();

      const big = manifestOf((s, i) => images.url(`/png/big/${s}/${i}.png`), 20, 100);
      const refused = await submit(server.url, big);
      expect(refused).toMatchObject({
        status: 503,
        body: {
          error: 'the server cannot write to its database: the disk is full; try again later',
        },
      });
      expect(refused.headers.get('retry-after')).toBe('5');
      tmpfs.fill(); // whatever the failed write let go of

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
      // 400 images with every write failing: slow on a loaded machine (it took over 10 s).
      const job = await waitForJob(
        server.url,
        running,
        (document) => document.counts.done === 400,
        45_000,
      );
      expect(job.status).toBe('completed');
      expect((await call(server.url, '/healthz')).status).toBe(503);

      rmSync(join(tmpfs.dir, 'filler'));
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
      // Space first: close() waits for the writer, which waits for space (a failed case
      // would otherwise hang there, and time out).
      rmSync(join(tmpfs.dir, 'filler'), { force: true });
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
    if (noTmpfs !== undefined) return context.skip(noTmpfs);
    const tmpfs = mountTmpfs('2m');
    try {
      const path = join(tmpfs.dir, 'jobs.db');
      openDatabase(path).close();
      tmpfs.remountReadOnly();
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
