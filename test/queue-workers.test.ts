/**
 * `serve --queue` lists the connected `imgjob worker` processes and the
 * stores each runs (`/api/overview` → `workers`, the dashboard's Workers
 * panel): each case looks at both, the API and the page in one Chromium.
 * Real redis-server (a database per case: the cases run at once); the worker
 * is held mid-store by a gate of the image server. Serve runs here, and a
 * worker too (its pid is this process's) unless it is killed outright: what
 * serve shows of them is the point, not their processes (a spawned
 * `serve --queue` costs ~0.7 s of CPU).
 *
 * @module-tag e2e
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import type { Page } from 'playwright-core';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { guardPage, launchBrowser, requireBrowser, type TestBrowser } from './helpers/browser.js';
import type { WorkerView } from '../src/queue/worker-watch.js';
import { gatedJob, queueTestBed, startWorker } from './helpers/queue-cluster.js';
import { serversHere, type ServedHere } from './helpers/queue-serve-here.js';
import { workersHere } from './helpers/queue-worker.js';
import { call, submitOk } from './helpers/serve-client.js';

vi.setConfig({ testTimeout: 90_000 });

const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');

const bed = queueTestBed();
const startWorkerHere = workersHere();
const serveHere = serversHere();
const { available, folders } = bed;
const browserAvailable = requireBrowser('queue-workers.test.ts');

const serve = (db: string, queue: string): Promise<ServedHere> =>
  serveHere(db, { gpuDelay: '0', queue });

/** A context of the worker's Chromium per case that shows the page: each its own clock. */
const contexts: TestBrowser[] = [];
afterAll(async () => {
  await Promise.all(contexts.map((context) => context.close()));
});

/**
 * The dashboard of `url` in a new tab, requests outside it refused; undefined
 * without Chromium (outside CI: the page half of a case is skipped). Its
 * clock (Playwright's) runs as the real one until `nextWorkersPoll()` moves it on.
 */
async function dashboard(
  url: string,
): Promise<{ page: Page; seen: Awaited<ReturnType<typeof guardPage>> } | undefined> {
  if (!browserAvailable) return undefined;
  const context = await launchBrowser();
  contexts.push(context);
  const page = await context.page();
  await page.clock.install();
  const seen = await guardPage(page, url);
  await page.goto(`${url}/`);
  return { page, seen };
}

/** How often the Workers panel reads the workers again (WORKERS_POLL_MS of src/web/jobs-view.ts). */
const WORKERS_POLL_MS = 3_000;

/**
 * Once `/api/overview` shows a change of the workers: the panel's next read,
 * now rather than up to 3 s later. It still has to come from the panel's own
 * timer; a read already under way when the change came is followed by the
 * next one in real time.
 */
async function nextWorkersPoll(page: Page): Promise<void> {
  await page.clock.fastForward(WORKERS_POLL_MS);
}

async function overviewText(url: string): Promise<string> {
  const res = await fetch(`${url}/api/overview`);
  expect(res.status).toBe(200);
  return res.text();
}

/**
 * Polls `/api/overview` until its `workers` satisfy `predicate`. The workers
 * snapshot behind it refreshes once a second: four looks a second see each
 * refresh soon enough, and leave serve's CPU to the cases running beside.
 */
async function waitForWorkers(
  url: string,
  predicate: (workers: readonly WorkerView[]) => boolean,
  timeoutMs = 20_000,
): Promise<readonly WorkerView[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const reply = await call(url, '/api/overview');
    const workers = (reply.body as { workers?: WorkerView[] }).workers;
    if (workers && predicate(workers)) return workers;
    if (performance.now() > deadline) {
      throw new Error(`timed out waiting for the workers: ${JSON.stringify(workers)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.skipIf(!available)('serve --queue: the Workers panel', () => {
  it.concurrent(
    'lists a connected worker (host, pid) with the store it runs, and drops it once it stops',
    async () => {
      const job = gatedJob(bed.server, 'workers', [['image.png', 'image.gif']]);
      folders.push(job.dir);
      const queue = bed.redis.urlFor(1);
      const serving = await serve(join(job.dir, 'jobs.db'), queue);
      const { url } = serving;
      // With the queue on and no worker yet, the panel is there and empty.
      await waitForWorkers(url, (workers) => workers.length === 0, 5_000);

      const worker = await startWorkerHere(queue, { slots: 3 });
      const { pid } = process;
      const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
      // The worker holds store S0 at its first image: mid-store.
      await bed.server.gate(job.key(0, 0)).reached;
      const [busy] = await waitForWorkers(url, (workers) => workers[0]?.running.length === 1);
      expect(busy).toMatchObject({
        host: hostname(),
        pid,
        slots: 3,
        running: [{ job_id: String(id), store_id: 'S0' }],
        other_stores: 0,
      });
      expect(busy?.id).toMatch(new RegExp(`^${hostname()}:${pid}:[0-9a-f]+$`));
      expect(worker.stdout).toContain(`as worker ${busy?.id ?? '?'}`);
      expect(Math.abs(Date.now() - (busy?.last_seen ?? 0))).toBeLessThan(10_000);
      // Nothing of the Redis URL is shown.
      const text = await overviewText(url);
      expect(text).not.toContain('redis://');
      expect(text).not.toContain(`:${bed.redis.port}`);

      const shown = await dashboard(url);
      const item = `.workers li[data-worker="${busy?.id ?? '?'}"]`;
      if (shown) {
        const { page } = shown;
        await page.waitForSelector(item, { timeout: 10_000 });
        expect(await page.locator(item).textContent()).toBe(
          `${hostname()} pid ${pid} · 1 of 3 slots: job #${id} store S0`,
        );
        expect(await page.locator(`${item} a`).getAttribute('href')).toBe(`/jobs/${id}`);
        mkdirSync(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'workers-panel.png') });
      }

      // The store ends: the worker stays listed, idle.
      job.openAll();
      await waitForWorkers(
        url,
        (workers) => workers.length === 1 && workers[0]?.running.length === 0,
      );

      // Stopped, it leaves the list within a few refreshes; the panel follows on its own.
      await worker.stop();
      await waitForWorkers(url, (workers) => workers.length === 0, 5_000);
      if (shown) {
        const { page, seen } = shown;
        await nextWorkersPoll(page);
        await page.waitForSelector(item, { state: 'detached', timeout: 15_000 });
        expect(await page.locator('.workers').textContent()).toContain(
          'No worker on this queue: ongoing jobs are waiting for workers',
        );
        expect(seen.outside).toEqual([]);
        await page.close();
      }
      await serving.close();
    },
  );

  it.concurrent(
    'shows a job waiting for workers while none is on the queue, and a worker killed outright as lost, with the store it ran, once its heartbeat stops',
    async () => {
      const job = gatedJob(bed.server, 'killed', [['image.png']]);
      folders.push(job.dir);
      const queue = bed.redis.urlFor(2);
      const serving = await serve(join(job.dir, 'jobs.db'), queue);
      const { url } = serving;
      const id = await submitOk(url, JSON.parse(readFileSync(job.manifest, 'utf8')));
      const shown = await dashboard(url);
      const row = `tr[data-job="${id}"] .waiting-workers`;
      if (shown) {
        const { page } = shown;
        await page.locator(row, { hasText: 'waiting for workers' }).waitFor({ timeout: 10_000 });
        expect(await page.locator('.workers [data-waiting]').count()).toBe(1);
      }

      const worker = await startWorker(queue, { env: { IMGJOB_WORKER_HEARTBEAT_MS: '200' } });
      await bed.server.gate(job.key(0, 0)).reached;
      await waitForWorkers(url, (workers) => workers[0]?.running.length === 1);
      const item = `.workers li[data-worker^="${hostname()}:${worker.pid}:"]`;
      if (shown) {
        const { page } = shown;
        await nextWorkersPoll(page);
        await page.waitForSelector(item, { timeout: 10_000 });
        // A worker on the queue: the job no longer says it waits.
        await page.waitForSelector(`${row}:empty`, { state: 'attached', timeout: 10_000 });
      }

      await worker.kill('SIGKILL');
      // No goodbye: the listing expires after three missed beats (600 ms here).
      const [lost] = await waitForWorkers(
        url,
        (workers) => workers[0]?.lost_at !== undefined,
        5_000,
      );
      expect(lost).toMatchObject({
        pid: worker.pid,
        running: [{ job_id: String(id), store_id: 'S0' }],
      });
      if (shown) {
        const { page, seen } = shown;
        await nextWorkersPoll(page);
        const lostItem = `${item}[data-lost]`;
        await page.waitForSelector(lostItem, { timeout: 15_000 });
        expect(await page.locator(lostItem).textContent()).toMatch(
          new RegExp(
            `^${hostname()} pid ${worker.pid} lost at .+: no sign of life; its stores go to other workers: job #${id} store S0$`,
          ),
        );
        mkdirSync(SCREENSHOTS, { recursive: true });
        await page.screenshot({ path: join(SCREENSHOTS, 'workers-lost.png') });
        expect(seen.outside).toEqual([]);
        await page.close();
      }
      job.openAll();
      await serving.close();
    },
  );

  it.concurrent("counts another coordinator's stores without showing their ids", async () => {
    const mine = gatedJob(bed.server, 'mine', [['image.png']]);
    const theirs = gatedJob(bed.server, 'theirs', [['image.gif']]);
    folders.push(mine.dir, theirs.dir);
    const queue = bed.redis.urlFor(3);
    const [a, b] = await Promise.all([
      serve(join(mine.dir, 'jobs.db'), queue),
      serve(join(theirs.dir, 'jobs.db'), queue),
    ]);
    const worker = await startWorkerHere(queue, { slots: 2 });
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
      pid: process.pid,
      running: [{ job_id: String(mineId), store_id: 'S0' }],
      other_stores: 1,
    });
    mine.openAll();
    theirs.openAll();
    await worker.stop();
    await Promise.all([a.close(), b.close()]);
  });
});
