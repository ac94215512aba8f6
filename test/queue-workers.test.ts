/**
 * `serve --queue` lists the connected `imgjob worker` processes and the
 * stores each runs (`/api/overview` → `workers`, the dashboard's Workers
 * panel). Real redis-server, the BUILT CLI; the worker is held mid-store by
 * a gate of the image server.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { guardPage, launchBrowser, requireBrowser } from './helpers/browser.js';
import { spawnServe, type Served } from './helpers/cli.js';
import type { WorkerView } from '../src/queue/worker-watch.js';
import { gatedJob, queueTestBed, startWorker } from './helpers/queue-cluster.js';
import { call, submitOk } from './helpers/serve-client.js';

vi.setConfig({ testTimeout: 90_000 });

const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');

const bed = queueTestBed();
const { available, folders } = bed;
const browserAvailable = requireBrowser('queue-workers.test.ts');

const serve = (db: string, queue = bed.redis.url): Promise<Served> =>
  spawnServe(db, ['--gpu-delay', '0', '--queue', queue]);

async function overviewText(url: string): Promise<string> {
  const res = await fetch(`${url}/api/overview`);
  expect(res.status).toBe(200);
  return res.text();
}

/** Polls `/api/overview` until its `workers` satisfy `predicate` (the snapshot refreshes every second). */
async function waitForWorkers(
  url: string,
  predicate: (workers: readonly WorkerView[]) => boolean,
  timeoutMs = 10_000,
): Promise<readonly WorkerView[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reply = await call(url, '/api/overview');
    const workers = (reply.body as { workers?: WorkerView[] }).workers;
    if (workers && predicate(workers)) return workers;
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for the workers: ${JSON.stringify(workers)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!available)('serve --queue: the Workers panel', () => {
  it('lists a connected worker (host, pid) with the store it runs, and drops it once it stops', async () => {
    const job = gatedJob(bed.server, 'workers', [['image.png', 'image.gif']]);
    folders.push(job.dir);
    const { run: serving, url } = await serve(join(job.dir, 'jobs.db'));
    // With the queue on and no worker yet, the panel is there and empty.
    await waitForWorkers(url, (workers) => workers.length === 0, 5_000);

    const worker = await startWorker(bed.redis.url, { slots: 3 });
    const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
    // The worker holds store S0 at its first image: mid-store.
    await bed.server.gate(job.key(0, 0)).reached;
    const [busy] = await waitForWorkers(url, (workers) => workers[0]?.running.length === 1);
    expect(busy).toMatchObject({
      host: hostname(),
      pid: worker.pid,
      slots: 3,
      running: [{ job_id: String(id), store_id: 'S0' }],
      other_stores: 0,
    });
    expect(busy?.id).toMatch(new RegExp(`^${hostname()}:${worker.pid}:[0-9a-f]+$`));
    expect(worker.stdout).toContain(`as worker ${busy?.id ?? '?'}`);
    expect(Math.abs(Date.now() - (busy?.last_seen ?? 0))).toBeLessThan(10_000);
    // Nothing of the Redis URL is shown.
    const text = await overviewText(url);
    expect(text).not.toContain('redis://');
    expect(text).not.toContain(`:${bed.redis.port}`);

    // The store ends: the worker stays listed, idle.
    job.openAll();
    await waitForWorkers(
      url,
      (workers) => workers.length === 1 && workers[0]?.running.length === 0,
    );

    // Stopped, it leaves the list within a few refreshes.
    const stopped = await worker.kill('SIGTERM');
    expect(stopped.code).toBe(143);
    await waitForWorkers(url, (workers) => workers.length === 0, 5_000);
    await serving.kill('SIGTERM');
  });

  it('shows a worker killed outright as lost, with the store it ran, once its heartbeat stops', async () => {
    const job = gatedJob(bed.server, 'killed', [['image.png']]);
    folders.push(job.dir);
    // A Redis database of its own: the dead worker's store, stalled, must not reach the other tests.
    const queue = bed.redis.urlFor(1);
    const { run: serving, url } = await serve(join(job.dir, 'jobs.db'), queue);
    const worker = await startWorker(queue, { env: { IMGJOB_WORKER_HEARTBEAT_MS: '200' } });
    const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
    await bed.server.gate(job.key(0, 0)).reached;
    await waitForWorkers(url, (workers) => workers[0]?.running.length === 1);
    await worker.kill('SIGKILL');
    // No goodbye: the listing expires after three missed beats (600 ms here).
    const [lost] = await waitForWorkers(url, (workers) => workers[0]?.lost_at !== undefined, 5_000);
    expect(lost).toMatchObject({
      pid: worker.pid,
      running: [{ job_id: String(id), store_id: 'S0' }],
    });
    job.openAll();
    await serving.kill('SIGTERM');
  });

  it("counts another coordinator's stores without showing their ids", async () => {
    const mine = gatedJob(bed.server, 'mine', [['image.png']]);
    const theirs = gatedJob(bed.server, 'theirs', [['image.gif']]);
    folders.push(mine.dir, theirs.dir);
    const [a, b] = await Promise.all([
      serve(join(mine.dir, 'jobs.db')),
      serve(join(theirs.dir, 'jobs.db')),
    ]);
    const worker = await startWorker(bed.redis.url, { slots: 2 });
    const mineId = await submitOk(a.url, JSON.parse(readFileSync(mine.manifest, 'utf8')));
    await submitOk(b.url, JSON.parse(readFileSync(theirs.manifest, 'utf8')));
    await Promise.all([
      bed.server.gate(mine.key(0, 0)).reached,
      bed.server.gate(theirs.key(0, 0)).reached,
    ]);
    const [seen] = await waitForWorkers(
      a.url,
      (workers) => (workers[0]?.running.length ?? 0) + (workers[0]?.other_stores ?? 0) === 2,
    );
    expect(seen).toMatchObject({
      pid: worker.pid,
      running: [{ job_id: String(mineId), store_id: 'S0' }],
      other_stores: 1,
    });
    mine.openAll();
    theirs.openAll();
    // Both end before the worker stops: nothing is handed back for the next test's worker.
    await waitForWorkers(
      a.url,
      (workers) => workers[0]?.running.length === 0 && workers[0].other_stores === 0,
    );
    await worker.kill('SIGTERM');
    await Promise.all([a.run.kill('SIGTERM'), b.run.kill('SIGTERM')]);
  });

  it.skipIf(!browserAvailable)(
    'shows the worker and its store in the Workers panel, and drops it once it stops',
    async () => {
      const job = gatedJob(bed.server, 'panel', [['image.png']]);
      folders.push(job.dir);
      const { run: serving, url } = await serve(join(job.dir, 'jobs.db'));
      const worker = await startWorker(bed.redis.url, { slots: 2 });
      const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
      await bed.server.gate(job.key(0, 0)).reached;
      const [busy] = await waitForWorkers(url, (workers) => workers[0]?.running.length === 1);
      const browser = await launchBrowser();
      try {
        const page = await browser.page();
        const seen = await guardPage(page, url);
        await page.goto(`${url}/`);
        const item = `.workers li[data-worker="${busy?.id ?? '?'}"]`;
        await page.waitForSelector(item, { timeout: 10_000 });
        expect(await page.locator(item).textContent()).toBe(
          `${hostname()} pid ${worker.pid} · 1 of 2 slots: job #${id} store S0`,
        );
        expect(await page.locator(`${item} a`).getAttribute('href')).toBe(`/jobs/${id}`);
        mkdirSync(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'workers-panel.png') });
        // The panel follows the workers on its own, with no job changing.
        job.openAll();
        await worker.kill('SIGTERM');
        await page.waitForSelector(item, { state: 'detached', timeout: 15_000 });
        expect(await page.locator('.workers').textContent()).toContain(
          'No worker on this queue: ongoing jobs are waiting for workers',
        );
        expect(seen.outside).toEqual([]);
      } finally {
        await browser.close();
        await serving.kill('SIGTERM');
      }
    },
  );

  it.skipIf(!browserAvailable)(
    'shows a job waiting for workers while none is on the queue, and a worker killed outright as lost',
    async () => {
      const job = gatedJob(bed.server, 'waiting', [['image.png']]);
      folders.push(job.dir);
      const queue = bed.redis.urlFor(3);
      const { run: serving, url } = await serve(join(job.dir, 'jobs.db'), queue);
      const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
      const browser = await launchBrowser();
      try {
        const page = await browser.page();
        const seen = await guardPage(page, url);
        await page.goto(`${url}/`);
        const row = `tr[data-job="${id}"] .waiting-workers`;
        await page.locator(row, { hasText: 'waiting for workers' }).waitFor({ timeout: 10_000 });
        expect(await page.locator('.workers [data-waiting]').count()).toBe(1);

        const worker = await startWorker(queue, { env: { IMGJOB_WORKER_HEARTBEAT_MS: '200' } });
        await bed.server.gate(job.key(0, 0)).reached;
        const item = `.workers li[data-worker^="${hostname()}:${worker.pid}:"]`;
        await page.waitForSelector(item, { timeout: 10_000 });
        // A worker on the queue: the job no longer says it waits.
        await page.waitForSelector(`${row}:empty`, { state: 'attached', timeout: 10_000 });

        await worker.kill('SIGKILL');
        const lost = `${item}[data-lost]`;
        await page.waitForSelector(lost, { timeout: 15_000 });
        expect(await page.locator(lost).textContent()).toMatch(
          new RegExp(
            `^${hostname()} pid ${worker.pid} lost at .+: no sign of life; its stores go to other workers: job #${id} store S0$`,
          ),
        );
        mkdirSync(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'workers-lost.png') });
        expect(seen.outside).toEqual([]);
      } finally {
        job.openAll();
        await browser.close();
        await serving.kill('SIGTERM');
      }
    },
  );
});
