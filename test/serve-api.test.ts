import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAddressGuard } from '../src/download/address-guard.js';
import { createApi } from '../src/serve/api.js';
import { startServer, type RunningServer, type ServeConfig } from '../src/serve/server.js';
import type { ResultsDocument } from '../src/types.js';
import {
  call,
  finished,
  manifestOf,
  results,
  submit,
  submitOk,
  waitForJob,
  postPieces,
} from './helpers/serve-client.js';
import { PNG_SIZE, startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-api-'));
let images: FaultServer;
let server: RunningServer;
let base: string;

/** A server on a fresh database; only the image server's own address gets through the guard. */
async function serve(extra: Partial<ServeConfig> = {}): Promise<RunningServer> {
  return startServer({
    port: 0,
    dbPath: join(folder, `${Math.random().toString(36).slice(2)}.db`),
    options: defaults(),
    addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
    ...extra,
  });
}

beforeAll(async () => {
  images = await startFaultServer();
  server = await serve({ maxBodyBytes: 64 * 1024 });
  base = server.url;
});

afterAll(async () => {
  await server.close();
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('POST /api/submit/', () => {
  it('answers 201 {"job_id": <number>} at once, with or without the trailing slash', async () => {
    for (const path of ['/api/submit/', '/api/submit']) {
      const reply = await call(base, path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(manifestOf((s, i) => images.url(`/png/${path}/${s}/${i}.png`), 1, 1)),
      });
      expect(reply.status).toBe(201);
      expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(Object.keys(reply.body as object)).toEqual(['job_id']);
      expect((reply.body as { job_id: unknown }).job_id).toEqual(expect.any(Number));
    }
  });

  it('hands out increasing ids', async () => {
    const first = await submitOk(base, { count: 0, visits: [] });
    const second = await submitOk(base, { count: 0, visits: [] });
    expect(second).toBeGreaterThan(first);
  });

  it.each([
    [
      'count differs from the visits',
      { count: 2, visits: [{ store_id: 'S1', image_url: ['http://x.test/a.png'] }] },
      'count: 2 does not match the 1 visit',
    ],
    [
      'a visit has no store_id',
      { count: 1, visits: [{ image_url: ['http://x.test/a.png'] }] },
      'visits[0].store_id: expected a non-empty string, but it is missing',
    ],
    [
      'a visit has no image_url',
      { count: 1, visits: [{ store_id: 'S1' }] },
      'visits[0].image_url: expected a non-empty array of http(s) URLs, but it is missing',
    ],
    ['count is missing', { visits: [] }, 'count: expected a whole number ≥ 0, but it is missing'],
    [
      'an URL is not http(s)',
      { count: 1, visits: [{ store_id: 'S1', image_url: ['ftp://x.test/a.png'] }] },
      'visits[0].image_url[0]: not an http(s) URL',
    ],
    ['the body is not JSON', '{"count": 1,', 'not valid JSON'],
    [
      'a key is given twice',
      '{"count": 0, "visits": [], "count": 0}',
      '(root): duplicate key "count"',
    ],
    ['the body is empty', '', 'empty, expected a JSON object'],
  ])('answers 400 {"error"} naming the place when %s', async (_name, manifest, message) => {
    const reply = await submit(base, manifest);
    expect(reply.status).toBe(400);
    expect(Object.keys(reply.body as object)).toEqual(['error']);
    expect((reply.body as { error: string }).error).toContain(message);
  });

  it('answers 400 naming the byte offset when the body is not UTF-8', async () => {
    const latin1 = Buffer.concat([
      Buffer.from('{"count": 0, "visits": [], "n": "'),
      Buffer.from([0xe9, 0x22, 0x7d]),
    ]);
    const reply = await call(base, '/api/submit/', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: latin1,
    });
    expect(reply).toMatchObject({
      status: 400,
      body: { error: 'not valid UTF-8: byte 0xe9 at byte offset 33' },
    });
  });

  it('joins several problems into the one error string', async () => {
    const reply = await submit(base, { count: 3, visits: [{ store_id: '', image_url: [] }] });
    const { error } = reply.body as { error: string };
    expect(error.split('; ')).toEqual([
      'visits[0].store_id: expected a non-empty string, got ""',
      'visits[0].image_url: expected a non-empty array of http(s) URLs, got []',
      'count: 3 does not match the 1 visit',
    ]);
  });

  it('refuses a body over the limit with 413, by Content-Length or while reading', async () => {
    const big = JSON.stringify({ count: 0, visits: [], pad: 'x'.repeat(70 * 1024) });
    const declared = await submit(base, big);
    expect(declared).toMatchObject({
      status: 413,
      body: { error: 'request body over the limit of 65536 bytes' },
    });
    const chunked = await postPieces(`${base}/api/submit/`, [
      big.slice(0, 40_000),
      big.slice(40_000),
    ]);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text)).toEqual({
      error: 'request body over the limit of 65536 bytes',
    });
  });

  it('takes a body sent in chunks (no Content-Length) as it takes one with a length', async () => {
    const text = JSON.stringify({
      count: 2,
      visits: [
        { store_id: 'C1', image_url: [images.url('/img/image.png')] },
        { store_id: 'C2', image_url: [images.url('/img/image.gif')] },
      ],
    });
    const third = Math.floor(text.length / 3);
    const reply = await postPieces(`${base}/api/submit/`, [
      text.slice(0, third),
      text.slice(third, 2 * third),
      text.slice(2 * third),
    ]);
    expect(reply.status, reply.text).toBe(201);
    const { job_id } = JSON.parse(reply.text) as { job_id: string };
    const status = await call(base, `/api/status?jobid=${job_id}`);
    expect(status.body).toMatchObject({ counts: { stores: 2, images: 2 } });
  });

  it('returns at once for a 100k-image job: rows first, processing after', async () => {
    const big = await serve({ options: { ...defaults(), concurrency: 2 } });
    try {
      const manifest = manifestOf((s, i) => images.url(`/gate/big/png/${s}/${i}.png`), 1000, 100);
      // Every image is held at the server: a submit that waited for any
      // processing would never answer, so the answer itself is the proof.
      const id = await submitOk(big.url, manifest);
      const status = await call(big.url, `/api/status?jobid=${id}`);
      expect(status.body).toMatchObject({ status: 'ongoing', job_id: String(id) });
      const listed = await call(big.url, '/api/jobs');
      expect((listed.body as { jobs: { counts: unknown }[] }).jobs[0]?.counts).toEqual({
        stores: 1000,
        images: 100_000,
        done: 0,
        failed: 0,
        skipped: 0,
        pending: 100_000,
      });
    } finally {
      await big.close();
    }
  });
});

describe('GET /api/status', () => {
  it('ongoing, then completed: {"status", "job_id"} with the id as a string, and the counts', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/gate/st1/png/${s}/${i}.png`), 2, 2),
    );
    const ongoing = await call(base, `/api/status?jobid=${id}`);
    expect(ongoing.status).toBe(200);
    expect(ongoing.body).toStrictEqual({
      status: 'ongoing',
      job_id: String(id),
      counts: { stores: 2, images: 4, done: 0, failed: 0, skipped: 0, pending: 4 },
    });
    expect(Object.keys(ongoing.body as object)).toEqual(['status', 'job_id', 'counts']);

    images.gate('st1').open();
    await waitForJob(base, id, finished);
    const completed = await call(base, `/api/status?jobid=${id}`);
    expect(completed.body).toStrictEqual({
      status: 'completed',
      job_id: String(id),
      counts: { stores: 2, images: 4, done: 4, failed: 0, skipped: 0, pending: 0 },
    });
  });

  it('failed: {"status", "job_id", "error": [{"store_id", "error"}]} with only the failed stores', async () => {
    const id = await submitOk(base, {
      count: 2,
      visits: [
        { store_id: 'S00339218', image_url: [images.url('/png/f/ok.png')] },
        {
          store_id: 'S01408764',
          image_url: [images.url('/missing/1.png'), images.url('/png/f/never.png')],
        },
      ],
    });
    await waitForJob(base, id, finished);
    const reply = await call(base, `/api/status?jobid=${id}`);
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body as object)).toEqual(['status', 'job_id', 'error', 'counts']);
    expect(reply.body).toStrictEqual({
      status: 'failed',
      job_id: String(id),
      error: [
        {
          store_id: 'S01408764',
          error: `image 1 of 2 (${images.url('/missing/1.png')}): HTTP 404 Not Found`,
        },
      ],
      counts: { stores: 2, images: 3, done: 1, failed: 1, skipped: 1, pending: 0 },
    });
    expect(images.requestsTo('/png/f/never.png')).toEqual([]);
  });

  it.each(['', '?jobid=', '?jobid=999999', '?jobid=abc', '?jobid=0', '?jobid=1.5', '?job_id=1'])(
    'answers 400 {} for an unknown or missing job: %s',
    async (query) => {
      const reply = await call(base, `/api/status${query}`);
      expect(reply.status).toBe(400);
      expect(reply.body).toStrictEqual({});
    },
  );
});

describe('GET /api/jobs/<id>/results', () => {
  it('is the results document of the CLI (schema-valid), measured image by image', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/png/r/${s}/${i}.png`), 2, 3),
    );
    const document = await waitForJob(base, id, finished);
    expect(validateResults(document), JSON.stringify(validateResults.errors)).toBe(true);
    expect(document).toMatchObject({
      schema_version: 1,
      tool: 'imgjob',
      job_id: String(id),
      status: 'completed',
      manifest_source: 'request body',
      options: {
        gpu_delay: '0',
        seed: null,
        header_only: false,
        max_bytes: 1024 * 1024,
        store_master: null,
      },
      counts: { stores: 2, images: 6, done: 6, failed: 0, skipped: 0, pending: 0 },
    });
    expect(document.finished_at).toEqual(expect.any(String));
    expect(document.stores.map((store) => store.store_id)).toEqual(['S1', 'S2']);
    expect(document.stores[0]?.visit_times).toEqual(['2024-11-15T10:00:00Z']);
    for (const store of document.stores) {
      for (const [index, image] of store.images.entries()) {
        expect(image).toMatchObject({
          url: images.url(`/png/r/${store.store_id.slice(1)}/${index + 1}.png`),
          status: 'done',
          ...PNG_SIZE,
          gpu_ms: 0,
        });
      }
    }
  });

  it('a running job is answered from memory, valid all the same', async () => {
    const id = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/gate/live/png/${s}/${i}.png`), 1, 2),
    );
    const document = await results(base, id);
    expect(document.status).toBe('ongoing');
    expect(validateResults(document), JSON.stringify(validateResults.errors)).toBe(true);
    images.gate('live').open();
    await waitForJob(base, id, finished);
  });

  it.each(['999999', 'abc', '0'])('answers 404 {"error"} for job %s', async (id) => {
    const reply = await call(base, `/api/jobs/${id}/results`);
    expect(reply).toMatchObject({ status: 404, body: { error: `no job ${id}` } });
  });
});

describe('GET /api/jobs', () => {
  it('lists recent jobs newest first, with their counts; pages with limit and before', async () => {
    const a = await submitOk(base, { count: 0, visits: [] });
    const b = await submitOk(
      base,
      manifestOf((s, i) => images.url(`/png/l/${s}/${i}.png`), 1, 2),
    );
    await waitForJob(base, b, finished);
    const reply = await call(base, '/api/jobs?limit=2');
    expect(reply.status).toBe(200);
    const { jobs } = reply.body as { jobs: Record<string, unknown>[] };
    expect(jobs.map((job) => job.job_id)).toEqual([String(b), String(a)]);
    expect(jobs[0]).toStrictEqual({
      job_id: String(b),
      status: 'completed',
      created_at: expect.any(String) as unknown,
      updated_at: expect.any(String) as unknown,
      finished_at: expect.any(String) as unknown,
      counts: { stores: 1, images: 2, done: 2, failed: 0, skipped: 0, pending: 0 },
    });
    const older = await call(base, `/api/jobs?limit=1&before=${b}`);
    expect((older.body as { jobs: { job_id: string }[] }).jobs.map((job) => job.job_id)).toEqual([
      String(a),
    ]);
  });

  it.each(['limit=0', 'limit=1001', 'limit=x', 'before=-1'])(
    'answers 400 for %s',
    async (query) => {
      const reply = await call(base, `/api/jobs?${query}`);
      expect(reply.status).toBe(400);
      expect((reply.body as { error: string }).error).toMatch(
        /^(limit|before): expected a whole number/,
      );
    },
  );
});

describe('routes', () => {
  it('GET /healthz reports the load; HEAD answers without a body', async () => {
    const reply = await call(base, '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.body).toStrictEqual({
      status: 'ok',
      running_jobs: expect.any(Number) as unknown,
      running_stores: expect.any(Number) as unknown,
      queued_stores: expect.any(Number) as unknown,
      unwritten_changes: expect.any(Number) as unknown,
    });
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('answers an unknown route with 404 JSON', async () => {
    const reply = await call(base, '/api/nope');
    expect(reply).toMatchObject({ status: 404, body: { error: 'no such route: GET /api/nope' } });
  });

  it.each([
    ['GET', '/api/submit/', 'POST'],
    ['PUT', '/api/submit', 'POST'],
    ['POST', '/api/status', 'GET, HEAD'],
    ['DELETE', '/api/jobs/1/results', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const reply = await call(base, path, { method });
    expect(reply.status).toBe(405);
    expect(reply.headers.get('allow')).toBe(allow);
    expect((reply.body as { error: string }).error).toContain(
      `${method} is not allowed on ${path}`,
    );
  });
});

describe('the shared engine', () => {
  it('runs many jobs at once over one store limit, each to its own end', async () => {
    const ids = await Promise.all(
      Array.from({ length: 8 }, (_, job) =>
        submitOk(
          base,
          manifestOf((s, i) => images.url(`/png/many/${job}/${s}/${i}.png`), 3, 2),
        ),
      ),
    );
    const documents = await Promise.all(ids.map((id) => waitForJob(base, id, finished)));
    expect(documents.map((document) => document.counts.done)).toEqual(ids.map(() => 6));
  });

  it('fails a store missing from the store master without downloading it', async () => {
    const strict = await serve({ storeMaster: { ids: new Set(['S1']), source: 'stores.csv' } });
    try {
      const id = await submitOk(
        strict.url,
        manifestOf((s, i) => images.url(`/png/sm/${s}/${i}.png`), 2, 1),
      );
      await waitForJob(strict.url, id, finished);
      const status = await call(strict.url, `/api/status?jobid=${id}`);
      expect(status.body).toMatchObject({
        status: 'failed',
        job_id: String(id),
        error: [{ store_id: 'S2', error: 'store S2 is not in the store master (stores.csv)' }],
      });
      expect(images.requestsTo('/png/sm/2/1.png')).toEqual([]);
    } finally {
      await strict.close();
    }
  });

  it('after close(), a submission gets 503 and the database keeps the job for the next start', async () => {
    const dbPath = join(folder, 'close.db');
    const first = await serve({ dbPath });
    const id = await submitOk(
      first.url,
      manifestOf((s, i) => images.url(`/gate/close/png/${s}/${i}.png`), 1, 1),
    );
    await first.close();
    // A request already on an open connection meets the service closed.
    const late = await createApi(first.service)({
      method: 'POST',
      path: '/api/submit/',
      query: new URLSearchParams(),
      contentType: 'application/json',
      body: () => Promise.resolve(Buffer.from('{"count": 0, "visits": []}')),
    });
    expect(late).toMatchObject({
      status: 503,
      body: { error: expect.stringContaining('shutting down') as unknown },
    });
    const second = await serve({ dbPath });
    try {
      expect(second.resumed).toEqual([id]);
      images.gate('close').open();
      const document = await waitForJob(second.url, id, finished);
      expect(document.counts.done).toBe(1);
    } finally {
      await second.close();
    }
  });
});

const defaults = (): ServeConfig['options'] => serveOptions();

const validateResults = (() => {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats.default(ajv);
  return ajv.compile<ResultsDocument>(
    JSON.parse(readFileSync('schema/results.schema.json', 'utf8')) as object,
  );
})();
