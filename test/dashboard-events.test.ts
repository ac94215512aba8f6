/**
 * The dashboard's server side without a browser: the event stream (ids,
 * Last-Event-ID resume, heartbeats, the end on shutdown), the overview
 * endpoint (status filter, search, keyset paging) and the page's headers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAddressGuard } from '../src/download/address-guard.js';
import type { JobDelta } from '../src/shared/api-shapes.js';
import { startServer, type RunningServer, type ServeConfig } from '../src/serve/server.js';
import * as api from './helpers/serve-client.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-dashboard-events-'));
let images: FaultServer;

function serve(extra: Partial<ServeConfig> = {}): Promise<RunningServer> {
  return startServer({
    port: 0,
    dbPath: join(folder, `${Math.random().toString(36).slice(2)}.db`),
    options: serveOptions({ concurrency: 8, perHost: 16, timeoutMs: 10_000 }),
    addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
    dashboard: { intervalMs: 10, jobsEveryMs: 0, heartbeatMs: 60_000 },
    ...extra,
  });
}

type Event = { id?: string; event: string; data: unknown };

/** A reader of `GET /api/events`: events as they come, and waits on them. */
async function openEvents(base: string, query = '', headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const res = await fetch(`${base}/api/events${query}`, { headers, signal: controller.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: Event[] = [];
  const comments: string[] = [];
  let ended = false;
  let buffer = '';
  const waiters = new Set<() => void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: Partial<Event> & { event: string } = { event: 'message' };
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) events.push({ ...event, data: JSON.parse(data) as unknown });
          for (const wake of waiters) wake();
        }
      }
    } catch {
      // Aborted by the test.
    }
    ended = true;
    for (const wake of waiters) wake();
  })();
  return {
    events,
    comments,
    get ended() {
      return ended;
    },
    /** Resolves once `check` holds; fails after 10 s. */
    until(check: () => boolean): Promise<void> {
      return new Promise((resolve, reject) => {
        const test = (): void => {
          if (check()) {
            waiters.delete(test);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(test);
          reject(new Error(`timed out; events: ${JSON.stringify(events).slice(0, 2000)}`));
        }, 10_000);
        waiters.add(test);
        test();
      });
    },
    async close() {
      controller.abort();
      await reading;
    },
  };
}

const seqOf = (event: Event): number => Number(event.id?.split('.')[1]);

beforeAll(async () => {
  images = await startFaultServer();
});

afterAll(async () => {
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('GET /api/events', () => {
  it('opens with a hello, numbers every event, and its job events rebuild the results', async () => {
    const server = await serve();
    try {
      const id = await api.submitOk(
        server.url,
        api.manifestOf((s, i) => images.url(`/gate/ev1/png/${s}/${i}.png`), 3, 4),
      );
      const stream = await openEvents(server.url, `?job=${id}`);
      const list = await openEvents(server.url);
      await stream.until(() => stream.events.length > 0);
      expect(stream.events[0]).toMatchObject({ event: 'hello', data: { resumed: false } });
      const start = await api.results(server.url, id);
      images.gate('ev1').open();
      const final = await api.waitForJob(server.url, id, api.finished);
      await stream.until(() =>
        stream.events.some(
          (event) =>
            event.event === 'job' && (event.data as { status: string }).status !== 'ongoing',
        ),
      );
      // Ids only increase; a job page's stream carries its job alone.
      const seqs = stream.events.slice(1).map(seqOf);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(stream.events.slice(1).every((event) => event.event === 'job')).toBe(true);
      // The snapshot taken after the hello, plus the job events, is the final document.
      const statuses = start.stores.map((store) =>
        store.images.map((image) => image.status as string),
      );
      for (const event of stream.events.filter((candidate) => candidate.event === 'job')) {
        for (const change of (
          event.data as { images: { s: number; i: number; r: { status: string } }[] }
        ).images) {
          const row = statuses[change.s];
          if (row) row[change.i] = change.r.status;
        }
      }
      expect(statuses).toEqual(
        final.stores.map((store) => store.images.map((image) => image.status)),
      );
      // The list's stream: the rows of the jobs list, the last one as the job ended.
      await list.until(() =>
        list.events.some((event) => JSON.stringify(event.data).includes('"status":"completed"')),
      );
      const jobsEvents = list.events.filter((event) => event.event === 'jobs');
      expect(jobsEvents.length).toBe(list.events.length - 1);
      const last = (
        jobsEvents.at(-1)?.data as { jobs: { job_id: string; status: string; counts: unknown }[] }
      ).jobs.at(-1);
      expect(last).toMatchObject({ job_id: String(id), status: 'completed', counts: final.counts });
      await stream.close();
      await list.close();
    } finally {
      await server.close();
    }
  });

  it('resumes after a drop with Last-Event-ID: every event once, none lost', async () => {
    const server = await serve();
    try {
      const id = await api.submitOk(
        server.url,
        api.manifestOf((s, i) => images.url(`/gate/ev2-${i}/png/${s}/${i}.png`), 2, 3),
      );
      const first = await openEvents(server.url, `?job=${id}`);
      images.gate('ev2-1').open();
      await first.until(() => first.events.some((event) => event.event === 'job'));
      const lastId = first.events.at(-1)?.id ?? '';
      await first.close();
      // Meanwhile the job goes on.
      images.gate('ev2-2').open();
      images.gate('ev2-3').open();
      const final = await api.waitForJob(server.url, id, api.finished);
      server.dashboard.tick();
      const second = await openEvents(server.url, `?job=${id}`, { 'last-event-id': lastId });
      await second.until(() =>
        second.events.some(
          (event) =>
            event.event === 'job' && (event.data as { status: string }).status === 'completed',
        ),
      );
      expect(second.events[0]).toMatchObject({ event: 'hello', data: { resumed: true } });
      // Every event once, in order, across the drop.
      const all = [...first.events.slice(1), ...second.events.slice(1)].map(seqOf);
      expect(all).toEqual([...all].sort((a, b) => a - b));
      expect(new Set(all).size).toBe(all.length);
      const done = [...first.events, ...second.events]
        .filter((event) => event.event === 'job')
        .flatMap(
          (event) =>
            (event.data as { images: { s: number; i: number; r: { status: string } }[] }).images,
        )
        .filter((change) => change.r.status === 'done');
      expect(done).toHaveLength(final.counts.done);
      await second.close();

      // An id of another server start (or made up) cannot be resumed: load afresh.
      const foreign = await openEvents(server.url, '?last_event_id=zzzz.5');
      await foreign.until(() => foreign.events.length > 0);
      expect(foreign.events[0]).toMatchObject({ event: 'hello', data: { resumed: false } });
      await foreign.close();
    } finally {
      await server.close();
    }
  });

  it('makes no events while nobody watches, and a resume across that time loads afresh', async () => {
    const server = await serve({ dashboard: { intervalMs: 10, jobsEveryMs: 0, lingerMs: 0 } });
    try {
      const stream = await openEvents(server.url);
      await stream.until(() => stream.events.length > 0);
      const lastId = stream.events[0]?.id ?? '';
      await stream.close();
      // The server hears of the closed stream within milliseconds, but not
      // always within expect.poll's default second when the cores are shared.
      await expect.poll(() => server.dashboard.streamCount, { timeout: 10_000 }).toBe(0);
      const id = await api.submitOk(
        server.url,
        api.manifestOf((s, i) => images.url(`/png/idle/${s}/${i}.png`), 1, 2),
      );
      await api.waitForJob(server.url, id, api.finished);
      server.dashboard.tick();
      const again = await openEvents(server.url, '', { 'last-event-id': lastId });
      await again.until(() => again.events.length > 0);
      expect(again.events[0]).toMatchObject({ event: 'hello', data: { resumed: false } });
      await again.close();
    } finally {
      await server.close();
    }
  });

  it('sends heartbeats on an idle stream, and ends every stream with bye on shutdown', async () => {
    const server = await serve({ dashboard: { intervalMs: 10, jobsEveryMs: 0, heartbeatMs: 20 } });
    const stream = await openEvents(server.url);
    await stream.until(() => stream.comments.length >= 2);
    expect(stream.comments[0]).toBe(': heartbeat');
    expect(server.dashboard.streamCount).toBe(1);
    const closed = server.close();
    await stream.until(() => stream.ended);
    await closed;
    expect(stream.events.at(-1)).toMatchObject({ event: 'bye' });
  });

  it('hears of a job change from the job itself: no timer looks at the jobs', async () => {
    // The jobs-list timer never fires in this test: job events come by subscription only.
    const server = await serve({ dashboard: { intervalMs: 3_600_000, coalesceMs: 10 } });
    try {
      const id = await api.submitOk(
        server.url,
        api.manifestOf((s, i) => images.url(`/gate/sub1/png/${s}/${i}.png`), 2, 3),
      );
      const stream = await openEvents(server.url, `?job=${id}`);
      await stream.until(() => stream.events.length > 0);
      images.gate('sub1').open();
      await stream.until(() =>
        stream.events.some(
          (event) => event.event === 'job' && (event.data as JobDelta).status === 'completed',
        ),
      );
      const deltas = stream.events.slice(1).map((event) => event.data as JobDelta);
      expect(
        deltas.flatMap((delta) => delta.images).filter((c) => c.r.status === 'done'),
      ).toHaveLength(6);
      expect(deltas.at(-1)?.counts).toMatchObject({ done: 6, pending: 0 });
      await stream.close();
    } finally {
      await server.close();
    }
  });

  it("gathers a job's changes into one event per window, not one per image", async () => {
    const server = await serve({ dashboard: { intervalMs: 3_600_000, coalesceMs: 3_600_000 } });
    try {
      const id = await api.submitOk(
        server.url,
        api.manifestOf((s, i) => images.url(`/gate/sub2/png/${s}/${i}.png`), 4, 25),
      );
      const stream = await openEvents(server.url, `?job=${id}`);
      await stream.until(() => stream.events.length > 0);
      images.gate('sub2').open();
      await api.waitForJob(server.url, id, api.finished);
      // The window is still open: nothing was sent yet.
      expect(stream.events.map((event) => event.event)).toEqual(['hello']);
      server.dashboard.tick();
      await stream.until(() => stream.events.length > 1);
      const [delta] = stream.events.slice(1).map((event) => event.data as JobDelta);
      expect(delta?.status).toBe('completed');
      expect(delta?.images).toHaveLength(100);
      expect(delta?.stores.map((store) => store.status)).toEqual(Array(4).fill('completed'));
      await stream.close();
    } finally {
      await server.close();
    }
  });

  it('refuses a job id that is no id', async () => {
    const server = await serve();
    try {
      const reply = await api.call(server.url, '/api/events?job=abc');
      expect(reply.status).toBe(400);
    } finally {
      await server.close();
    }
  });
});

describe('GET /api/overview', () => {
  it('filters by status, searches by job id or store id prefix, and pages by keyset', async () => {
    const server = await serve();
    try {
      const ids: number[] = [];
      for (let n = 0; n < 7; n++) {
        const manifest = api.manifestOf(
          (s, i) =>
            images.url(n % 3 === 0 ? `/missing/${n}/${s}/${i}.png` : `/png/${n}/${s}/${i}.png`),
          1,
          1,
        );
        manifest.visits[0] = {
          ...manifest.visits[0],
          store_id: `ST-${n}_x%`,
          image_url: manifest.visits[0]?.image_url ?? [],
          visit_time: 'x',
        };
        ids.push(await api.submitOk(server.url, manifest));
      }
      for (const id of ids) await api.waitForJob(server.url, id, api.finished);
      type Page = {
        jobs: { job_id: string; status: string; stores_done: number }[];
        next_before: number | null;
        totals: Record<string, number>;
      };
      const get = async (query: string): Promise<Page> => {
        const reply = await api.call(server.url, `/api/overview${query}`);
        expect(reply.status).toBe(200);
        return reply.body as Page;
      };
      const all = await get('');
      expect(all.jobs.map((job) => Number(job.job_id))).toEqual([...ids].reverse());
      expect(all.totals).toEqual({ all: 7, ongoing: 0, completed: 4, failed: 3 });
      expect(all.jobs.every((job) => job.stores_done === 1)).toBe(true);

      const failedJobs = await get('?status=failed');
      expect(failedJobs.jobs.map((job) => Number(job.job_id))).toEqual([ids[6], ids[3], ids[0]]);

      expect((await get('?q=st-4')).jobs.map((job) => Number(job.job_id))).toEqual([ids[4]]);
      // LIKE wildcards in the search are literal.
      expect((await get('?q=ST-4_x%25')).jobs.map((job) => Number(job.job_id))).toEqual([ids[4]]);
      expect((await get('?q=ST-_')).jobs).toEqual([]);
      expect((await get(`?q=${ids[2] ?? 0}`)).jobs.map((job) => Number(job.job_id))).toEqual([
        ids[2],
      ]);

      const seen: number[] = [];
      let before = '';
      for (;;) {
        const page = await get(`?limit=3${before}`);
        seen.push(...page.jobs.map((job) => Number(job.job_id)));
        if (page.next_before === null) break;
        before = `&before=${page.next_before}`;
      }
      expect(seen).toEqual([...ids].reverse());

      expect((await api.call(server.url, '/api/overview?status=nope')).status).toBe(400);
      expect((await api.call(server.url, '/api/overview?limit=0')).status).toBe(400);
    } finally {
      await server.close();
    }
  });
});

describe('the Workers seam (serve --queue)', () => {
  it('lists the workers in /api/overview only when a provider is given', async () => {
    const workers = [{ id: 'w1', host: 'box-2', running: [{ job_id: '3', store_id: 'S1' }] }];
    const withQueue = await serve({ dashboard: { workers: () => workers } });
    const without = await serve();
    try {
      expect((await api.call(withQueue.url, '/api/overview')).body).toMatchObject({ workers });
      expect((await api.call(without.url, '/api/overview')).body).not.toHaveProperty('workers');
    } finally {
      await withQueue.close();
      await without.close();
    }
  });
});

describe('the page and its files', () => {
  it('are served with a strict CSP, from the package, GET only', async () => {
    const server = await serve();
    try {
      for (const path of [
        '/',
        '/jobs/12',
        '/assets/app.js',
        '/assets/app.css',
        '/assets/icon.svg',
      ]) {
        const res = await fetch(`${server.url}${path}`);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self'/);
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        const body = await res.text();
        // Nothing from elsewhere: no absolute URL to another origin in the page or its files.
        expect(body).not.toMatch(/(src|href)=["']?(https?:)?\/\//);
      }
      const html = await (await fetch(`${server.url}/`)).text();
      expect(html).not.toMatch(/<script>|<style>|style=/);
      expect((await fetch(`${server.url}/`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`${server.url}/assets/nope.js`)).status).toBe(404);
      // The job API is untouched.
      expect((await api.call(server.url, '/healthz')).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
