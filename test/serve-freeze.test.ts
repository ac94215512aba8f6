/**
 * No job may keep the event loop from other clients (issue 13 §2): a job of
 * 100k stores whose URLs the address guard refuses at once used to run
 * entirely in microtasks and leave /healthz unanswered for half a minute.
 *
 * @module-tag e2e
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { startServer } from '../src/serve/server.js';
import { spawnCli } from './helpers/cli.js';
import { call, submit, submitOk } from './helpers/serve-client.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-freeze-'));
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

const OPTIONS = serveOptions({ concurrency: 64 });
const STORES = 100_000;

/**
 * A manifest of `stores` one-image stores on a loopback address (refused
 * without --allow-private). Written as text: for 100k stores, building the
 * objects and stringifying them cost this process a third more.
 */
function refusedManifest(stores: number): string {
  const visits: string[] = [];
  for (let store = 0; store < stores; store++)
    visits.push(`{"store_id":"S${store}","image_url":["http://127.0.0.1/x/${store}.png"]}`);
  return `{"count":${stores},"visits":[${visits.join(',')}]}`;
}

describe('a job of 100k refused stores', () => {
  // The server runs as a user runs it, in a process of its own: the test's
  // own work (building a 7 MB manifest, parsing answers) does not count.
  it('answers /healthz and another client again and again while the job runs', async () => {
    const run = spawnCli([
      'serve',
      '--db',
      join(folder, 'freeze.db'),
      '--port',
      '0',
      '--gpu-delay',
      '0',
      '--retries',
      '0',
      '-c',
      '64',
    ]);
    try {
      const output = await run.waitForOutput(/listening on http:\/\/\S+/);
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '';
      const big = await submitOk(url, refusedManifest(STORES));
      const small = await submitOk(url, refusedManifest(1));
      const failedOf = async (): Promise<{ status: string; failed: number }> => {
        const reply = await call(url, `/api/status?jobid=${big}`);
        const body = reply.body as { status: string; counts: { failed: number } };
        return { status: body.status, failed: body.counts.failed };
      };
      // From the first refused store on. (Taking the submit in — parsing 7 MB
      // and writing 200k rows — holds the loop by itself; see docs/serve.md.)
      await expect.poll(async () => (await failedOf()).failed).toBeGreaterThan(0);
      // Event-based, not timed: between two answers to other clients the job
      // may only have moved on a little. Before the fix the loop was held for
      // the whole job (~30 s) and the first answer came after its last store,
      // one step of 100,000; a job that yields every 20 ms moves a few
      // hundred stores between two probes, a few thousand on a loaded machine.
      // Probed over the job's first quarter, 25,000 stores: the rest would run
      // the same way, at ~40 s of a loaded test run.
      const progress: number[] = [];
      for (
        let seen = await failedOf();
        seen.status === 'ongoing' && seen.failed < STORES / 4;
        seen = await failedOf()
      ) {
        progress.push(seen.failed);
        expect((await call(url, '/healthz')).status).toBe(200);
        expect((await call(url, `/api/status?jobid=${small}`)).status).toBe(200);
      }
      const steps = progress.slice(1).map((failed, index) => failed - (progress[index] ?? 0));
      expect(new Set(progress).size, `failed counts seen: ${progress.join(', ')}`).toBeGreaterThan(
        3,
      );
      expect(Math.max(...steps), `failed counts seen: ${progress.join(', ')}`).toBeLessThan(
        STORES / 4,
      );
      // And every store that ran ended refused.
      const job = (await call(url, `/api/status?jobid=${big}`)).body as {
        counts: { stores: number; failed: number; done: number };
      };
      expect(job.counts).toMatchObject({ stores: STORES, done: 0 });
      expect(job.counts.failed).toBeGreaterThanOrEqual(Math.max(...progress));
    } finally {
      await run.kill('SIGKILL');
    }
  }, 300_000);

  it('a submit over --max-stores or --max-images answers 413 and names the limit', async () => {
    const server = await startServer({
      port: 0,
      dbPath: join(folder, 'limits.db'),
      options: OPTIONS,
      limits: { maxStores: 3, maxImages: 5 },
    });
    try {
      const stores = await submit(server.url, refusedManifest(4));
      expect(stores).toMatchObject({
        status: 413,
        body: {
          error:
            'the job has 4 stores; this server takes at most 3 stores in one job (--max-stores)',
        },
      });
      const visits = [
        { store_id: 'A', image_url: ['http://127.0.0.1/1', 'http://127.0.0.1/2'] },
        { store_id: 'B', image_url: ['http://127.0.0.1/3', 'http://127.0.0.1/4'] },
        { store_id: 'A', image_url: ['http://127.0.0.1/5', 'http://127.0.0.1/6'] },
      ];
      const images = await submit(server.url, { count: 3, visits });
      expect(images).toMatchObject({
        status: 413,
        body: {
          error:
            'the job has 6 images; this server takes at most 5 images in one job (--max-images)',
        },
      });
      // At the limit is accepted.
      expect(await submitOk(server.url, refusedManifest(3))).toEqual(expect.any(Number));
      const listed = await call(server.url, '/api/jobs');
      expect((listed.body as { jobs: unknown[] }).jobs).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
