import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import Sqlite from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { JobState, type JournalEntry } from '../src/results/job-state.js';
import { canonicalManifest, parseManifest } from '../src/input/manifest.js';
import type { ApiResponse } from '../src/serve/api.js';
import { BatchWriter } from '../src/serve/batch-writer.js';
import { openDatabase } from '../src/serve/db.js';
import { createHttpServer, listen } from '../src/serve/http.js';
import { JobRecords, type JobChanges } from '../src/serve/job-records.js';
import { MIGRATIONS } from '../src/serve/migrations.js';
import type { ImageResult } from '../src/types.js';
import { resultOptions } from './helpers/job-input.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-db-'));
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});
const fresh = (name: string): string =>
  join(folder, `${name}-${Math.random().toString(36).slice(2)}.db`);

const OPTIONS = resultOptions({ seed: 7 });
const MANIFEST = JSON.stringify({
  count: 3,
  visits: [
    { store_id: 'A', image_url: ['http://x.test/1.png', 'http://x.test/2.png'], visit_time: 't1' },
    { store_id: 'B', image_url: ['http://x.test/3.png'] },
    { store_id: 'A', image_url: ['http://x.test/4.png'], visit_time: 't2' },
  ],
});
const done = (url: string): ImageResult => ({
  url,
  status: 'done',
  width: 4,
  height: 3,
  perimeter: 14,
  type: 'png',
  bytes: 99,
  attempts: 1,
  gpu_ms: 0,
  download_ms: 2,
});

describe('openDatabase', () => {
  it('creates the schema in WAL mode, and opens it again as it is', async () => {
    const path = fresh('schema');
    const db = openDatabase(path);
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    await new JobRecords(db).create(parseManifest(MANIFEST, 'm'), OPTIONS, new Date());
    db.close();
    const again = openDatabase(path);
    expect(new JobRecords(again).unfinished()).toEqual([1]);
    again.close();
  });

  it('refuses a database made by a newer imgjob, a file that is not a database, a missing folder', () => {
    const newer = fresh('newer');
    const db = new Sqlite(newer);
    db.pragma('user_version = 99');
    db.close();
    expect(() => openDatabase(newer)).toThrow(
      `cannot use database ${newer}: its schema version is 99, newer than this imgjob knows (${MIGRATIONS.length}); use a newer imgjob`,
    );
    const text = join(folder, 'notes.txt');
    writeFileSync(text, 'not a database, but long enough to have a header of sorts '.repeat(10));
    expect(() => openDatabase(text)).toThrow(`cannot use database ${text}: it is not a database`);
    const missing = join(folder, 'no-such-folder', 'x.db');
    expect(() => openDatabase(missing)).toThrow(
      `cannot use database ${missing}: its folder does not exist`,
    );
  });
});

describe('JobRecords', () => {
  it('stores the manifest gzipped, and still takes up a job stored with it as text', async () => {
    const db = openDatabase(fresh('manifest-text'));
    const records = new JobRecords(db);
    const input = parseManifest(MANIFEST, 'request body');
    await records.create(input, OPTIONS, new Date());
    await records.create(input, OPTIONS, new Date());
    const stored = db.prepare('SELECT manifest FROM jobs WHERE id = 1').pluck().get();
    expect(gunzipSync(stored as Buffer).toString('utf8')).toBe(canonicalManifest(input));
    // As imgjob wrote it before manifests were compressed.
    db.prepare('UPDATE jobs SET manifest = ? WHERE id = 2').run(canonicalManifest(input));
    for (const id of [1, 2]) {
      const loaded = records.load(id);
      expect(loaded?.input.digest).toBe(input.digest);
      expect(loaded?.input.stores).toEqual(input.stores);
    }
  });

  it('keeps a job as JobState holds it: the document from the rows is the one in memory', async () => {
    const db = openDatabase(fresh('records'));
    const records = new JobRecords(db);
    const input = parseManifest(MANIFEST, 'request body');
    const state = await records.create(input, OPTIONS, new Date('2024-01-02T03:04:05Z'));
    const entries: JournalEntry[] = [];
    state.subscribe((entry) => entries.push(entry));
    state.setStoreStatus(0, 'ongoing');
    state.recordImage(0, 0, done('http://x.test/1.png'));
    state.recordImage(0, 1, {
      url: 'http://x.test/2.png',
      status: 'failed',
      error: 'HTTP 404 Not Found',
      code: 'E_HTTP_STATUS',
      attempts: 1,
    });
    state.recordImage(0, 2, { url: 'http://x.test/4.png', status: 'skipped' });
    state.setStoreStatus(0, 'failed', 'image 2 of 3: HTTP 404 Not Found');
    records.write([{ state, entries }]);

    const fromRows = records.document(1);
    const { updated_at: _a, ...expected } = state.toDocument();
    const { updated_at: _b, ...actual } = fromRows ?? state.toDocument();
    expect(actual).toEqual(expected);
    expect(fromRows?.stores[0]?.visit_times).toEqual(['t1', 't2']);
    expect(records.status(1)).toEqual({
      status: 'ongoing',
      job_id: '1',
      counts: { stores: 2, images: 4, done: 1, failed: 1, skipped: 1, pending: 1 },
    });
    expect(records.list(10)[0]?.counts).toEqual({
      stores: 2,
      images: 4,
      done: 1,
      failed: 1,
      skipped: 1,
      pending: 1,
    });

    // Taken up again: the same results, the unfinished store from its first pending image.
    const loaded = records.load(1);
    expect(loaded?.input.digest).toBe(input.digest);
    expect(loaded?.state.isStoreFinished(0)).toBe(true);
    expect(loaded?.state.firstPending(1)).toBe(0);

    state.recordImage(1, 0, done('http://x.test/3.png'));
    state.setStoreStatus(1, 'completed');
    records.write([{ state, entries: entries.slice(-2) }]);
    expect(records.status(1)).toEqual({
      status: 'failed',
      job_id: '1',
      error: [{ store_id: 'A', error: 'image 2 of 3: HTTP 404 Not Found' }],
      counts: { stores: 2, images: 4, done: 2, failed: 1, skipped: 1, pending: 0 },
    });
    expect(records.unfinished()).toEqual([]);
    expect(records.document(1)?.finished_at).toEqual(expect.any(String));
    db.close();
  });

  it('records an empty job as completed at once', async () => {
    const db = openDatabase(fresh('empty'));
    const records = new JobRecords(db);
    const state = await records.create(
      parseManifest('{"count": 0, "visits": []}', 'm'),
      OPTIONS,
      new Date(),
    );
    expect(state.status).toBe('completed');
    expect(records.status(1)).toEqual({
      status: 'completed',
      job_id: '1',
      counts: { stores: 0, images: 0, done: 0, failed: 0, skipped: 0, pending: 0 },
    });
    expect(records.document(1)?.finished_at).toEqual(expect.any(String));
    expect(records.unfinished()).toEqual([]);
    db.close();
  });
});

describe('BatchWriter', () => {
  const job = (): JobState =>
    JobState.create(parseManifest(MANIFEST, 'm'), '1', OPTIONS, new Date());
  const fakeRecords = (write: (changes: readonly JobChanges[]) => void) =>
    ({ write }) as unknown as JobRecords;

  it('writes the changes of every job together, once per interval', async () => {
    const write = vi.fn<(changes: readonly JobChanges[]) => void>();
    const writer = new BatchWriter(fakeRecords(write), { intervalMs: 20 });
    const [a, b] = [job(), job()];
    writer.watch(a);
    writer.watch(b);
    a.setStoreStatus(0, 'ongoing');
    b.setStoreStatus(1, 'ongoing');
    a.recordImage(0, 0, done('http://x.test/1.png'));
    expect(write).not.toHaveBeenCalled();
    await writer.written();
    expect(write).toHaveBeenCalledTimes(1);
    expect(write.mock.calls[0]?.[0].map((change) => change.entries.length)).toEqual([2, 1]);
    expect(writer.size).toBe(0);
  });

  it('writes at once when maxBatch changes wait', () => {
    const write = vi.fn<(changes: readonly JobChanges[]) => void>();
    const writer = new BatchWriter(fakeRecords(write), { intervalMs: 10_000, maxBatch: 3 });
    const state = job();
    writer.watch(state);
    state.setStoreStatus(0, 'ongoing');
    state.setStoreStatus(1, 'ongoing');
    expect(write).not.toHaveBeenCalled();
    state.recordImage(0, 0, done('http://x.test/1.png'));
    expect(write).toHaveBeenCalledTimes(1);
    writer.unwatch(state);
    state.recordImage(0, 1, done('http://x.test/2.png'));
    expect(writer.size).toBe(0);
  });

  it('keeps the changes when a write fails and writes them on the next try', async () => {
    let fail = true;
    const written: JournalEntry[] = [];
    const onError = vi.fn();
    const writer = new BatchWriter(
      fakeRecords((changes) => {
        if (fail) throw new Error('disk full');
        for (const change of changes) written.push(...change.entries);
      }),
      { intervalMs: 5, onError },
    );
    const state = job();
    writer.watch(state);
    state.setStoreStatus(0, 'ongoing');
    const settled = writer.written();
    await vi.waitFor(() => {
      expect(onError).toHaveBeenCalled();
    });
    expect(writer.size).toBe(1);
    fail = false;
    await settled;
    expect(written).toEqual([{ t: 'store', s: 0, status: 'ongoing' }]);
  });
});

describe('the HTTP layer', () => {
  it('answers an unexpected error with a plain 500 JSON, and logs the cause', async () => {
    const onError = vi.fn();
    const server = createHttpServer(
      (): Promise<ApiResponse> => Promise.reject(new Error('secret detail at /src/x.ts:1')),
      { maxBodyBytes: 10, onError },
    );
    const url = await listen(server, '127.0.0.1', 0);
    try {
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(500);
      expect(await res.text()).toBe('{"error":"internal error; see the server log"}\n');
      expect(onError).toHaveBeenCalledWith('internal error on GET /healthz', expect.any(Error));
    } finally {
      server.close();
    }
  });
});
