/**
 * `serve` tells what it does (issue 12 §6): GET and DELETE /api/jobs/<id>,
 * counts in /api/status, named counts in /healthz, one log line per job on
 * submit and at the end, as text or JSON lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAddressGuard } from '../src/download/address-guard.js';
import { startServer, type RunningServer, type ServeConfig } from '../src/serve/server.js';
import { call, finished, manifestOf, submitOk, waitForJob } from './helpers/serve-client.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-jobs-'));
let images: FaultServer;
let server: RunningServer;
let base: string;
const log: string[] = [];

const OPTIONS = serveOptions();

async function serve(extra: Partial<ServeConfig> = {}): Promise<RunningServer> {
  return startServer({
    port: 0,
    dbPath: join(folder, `${Math.random().toString(36).slice(2)}.db`),
    options: OPTIONS,
    addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
    ...extra,
  });
}

beforeAll(async () => {
  images = await startFaultServer();
  server = await serve({ log: (line) => log.push(line) });
  base = server.url;
});

afterAll(async () => {
  await server.close();
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('GET /api/jobs/<id>', () => {
  it('is the job with its counts and one summary per store, without the images', async () => {
    const id = await submitOk(base, {
      count: 3,
      visits: [
        { store_id: 'A', image_url: [images.url('/png/v/1.png'), images.url('/png/v/2.png')] },
        { store_id: 'B', image_url: [images.url('/missing/v.png'), images.url('/png/v/3.png')] },
        { store_id: 'A', image_url: [images.url('/png/v/4.png')] },
      ],
    });
    await waitForJob(base, id, finished);
    const reply = await call(base, `/api/jobs/${id}`);
    expect(reply.status).toBe(200);
    expect(reply.body).toStrictEqual({
      job_id: String(id),
      status: 'failed',
      cancelled: false,
      created_at: expect.any(String) as unknown,
      updated_at: expect.any(String) as unknown,
      finished_at: expect.any(String) as unknown,
      counts: { stores: 2, images: 5, done: 3, failed: 1, skipped: 1, pending: 0 },
      stores: [
        {
          store_id: 'A',
          status: 'completed',
          counts: { images: 3, done: 3, failed: 0, skipped: 0, pending: 0 },
        },
        {
          store_id: 'B',
          status: 'failed',
          error: `image 1 of 2 (${images.url('/missing/v.png')}): HTTP 404 Not Found`,
          counts: { images: 2, done: 0, failed: 1, skipped: 1, pending: 0 },
        },
      ],
    });
  });

  it('answers a running job from memory, its stores as they stand', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/gate/view/png/${s}/${i}.png`), 2, 1),
    );
    const reply = await call(base, `/api/jobs/${id}/`);
    expect(reply.body).toMatchObject({
      status: 'ongoing',
      counts: { stores: 2, images: 2, pending: 2 },
    });
    images.gate('view').open();
    await waitForJob(base, id, finished);
  });

  it.each(['999999', 'abc', '0', '-1'])('answers 404 {"error"} for job %s', async (id) => {
    const reply = await call(base, `/api/jobs/${id}`);
    expect(reply).toMatchObject({ status: 404, body: { error: `no job ${id}` } });
  });
});

describe('DELETE /api/jobs/<id>', () => {
  it('cancels a running job: unfinished stores fail "cancelled", done work stays', async () => {
    const id = await submitOk(base, {
      count: 3,
      visits: [
        { store_id: 'done', image_url: [images.url('/png/c/1.png')] },
        {
          store_id: 'held',
          image_url: [images.url('/gate/cancel/png/1.png'), images.url('/png/c/never.png')],
        },
        { store_id: 'held2', image_url: [images.url('/gate/cancel/png/2.png')] },
      ],
    });
    await waitForJob(base, id, (document) => document.stores[0]?.status === 'completed');
    const reply = await call(base, `/api/jobs/${id}`, { method: 'DELETE' });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      job_id: String(id),
      status: 'failed',
      cancelled: true,
      counts: { stores: 3, images: 4, done: 1, failed: 0, skipped: 3, pending: 0 },
      stores: [
        { store_id: 'done', status: 'completed' },
        { store_id: 'held', status: 'failed', error: 'cancelled' },
        { store_id: 'held2', status: 'failed', error: 'cancelled' },
      ],
    });
    // The Retail Pulse status keeps its three states: a cancelled job is failed.
    const status = await call(base, `/api/status?jobid=${id}`);
    expect(status.body).toMatchObject({
      status: 'failed',
      error: [
        { store_id: 'held', error: 'cancelled' },
        { store_id: 'held2', error: 'cancelled' },
      ],
    });
    // Idempotent, and the job stays readable.
    const again = await call(base, `/api/jobs/${id}`, { method: 'DELETE' });
    expect(again.body).toStrictEqual(reply.body);
    expect((await call(base, `/api/jobs/${id}/results`)).status).toBe(200);
    images.gate('cancel').open();
    expect(images.requestsTo('/png/c/never.png')).toEqual([]);
  });

  it('changes nothing on a finished job', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/png/f/${s}/${i}.png`), 1, 1),
    );
    const before = (await waitForJob(base, id, finished)).counts;
    const reply = await call(base, `/api/jobs/${id}`, { method: 'DELETE' });
    expect(reply).toMatchObject({
      status: 200,
      body: { status: 'completed', cancelled: false, counts: before },
    });
  });

  it('answers 404 for an unknown job, 405 on the results route', async () => {
    expect(await call(base, '/api/jobs/999999', { method: 'DELETE' })).toMatchObject({
      status: 404,
      body: { error: 'no job 999999' },
    });
    const reply = await call(base, '/api/jobs/1', { method: 'PUT' });
    expect(reply.status).toBe(405);
    expect(reply.headers.get('allow')).toBe('GET, HEAD, DELETE');
  });

  it('survives a restart: the cancelled job is read from the database as it was left', async () => {
    const dbPath = join(folder, 'cancel-restart.db');
    const first = await serve({ dbPath });
    const id = await submitOk(
      first.url,
      manifestOf((s, i) => images.url(`/gate/cr/png/${s}/${i}.png`), 2, 2),
    );
    const cancelled = await call(first.url, `/api/jobs/${id}`, { method: 'DELETE' });
    await first.close();
    const second = await serve({ dbPath });
    try {
      expect(second.resumed).toEqual([]);
      const reply = await call(second.url, `/api/jobs/${id}`);
      expect(reply.body).toStrictEqual(cancelled.body);
    } finally {
      await second.close();
      images.gate('cr').open();
    }
  });
});

describe('/healthz', () => {
  it('names what it counts', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/gate/hz/png/${s}/${i}.png`), 6, 1),
    );
    await waitForJob(base, id, (document) => document.stores.some((s) => s.status === 'ongoing'));
    const reply = await call(base, '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      status: 'ok',
      running_jobs: 1,
      running_stores: 4, // the concurrency
      queued_stores: 2,
      unwritten_changes: expect.any(Number) as unknown,
    });
    images.gate('hz').open();
    await waitForJob(base, id, finished);
  });
});

describe('the log', () => {
  it('has one line per job on submit and one at its end (text)', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/png/log/${s}/${i}.png`), 2, 3),
    );
    await waitForJob(base, id, finished);
    await expect
      .poll(() => log.filter((line) => line.startsWith(`job ${id} `)))
      .toEqual([
        `job ${id} submitted: 2 stores, 6 images`,
        expect.stringMatching(
          new RegExp(
            `^job ${id} completed: 6 done, 0 failed, 0 skipped of 6 images in 2 stores \\(\\d+\\.\\d s\\)$`,
          ),
        ),
      ]);
  });

  it('gives JSON lines with --log-format json', async () => {
    const lines: string[] = [];
    const json = await serve({ log: (line) => lines.push(line), logFormat: 'json' });
    try {
      const id = await submitOk(
        json.url,
        manifestOf((s, i) => images.url(`/gate/json/png/${s}/${i}.png`), 1, 2),
      );
      await call(json.url, `/api/jobs/${id}`, { method: 'DELETE' });
      const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(events).toEqual([
        {
          time: expect.any(String) as unknown,
          level: 'info',
          event: 'job_submitted',
          msg: `job ${id} submitted: 1 store, 2 images`,
          job_id: String(id),
          stores: 1,
          images: 2,
        },
        {
          time: expect.any(String) as unknown,
          level: 'info',
          event: 'job_finished',
          msg: expect.stringMatching(
            /^job \d+ cancelled: 0 done, 0 failed, 2 skipped of 2 images in 1 store/,
          ) as unknown,
          job_id: String(id),
          status: 'failed',
          cancelled: true,
          stores: 1,
          images: 2,
          done: 0,
          failed: 0,
          skipped: 2,
          duration_ms: expect.any(Number) as unknown,
        },
      ]);
      expect(Date.parse(events[0]?.time as string)).not.toBeNaN();
    } finally {
      await json.close();
      images.gate('json').open();
    }
  });
});
