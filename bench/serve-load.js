// @ts-check
/**
 * Load test of `imgjob serve` (not part of the test suite): many small jobs
 * submitted at once by concurrent clients, then status queries hammering the
 * API while the jobs run, then the wait until every job has finished.
 * Reports requests per second and latency percentiles of each phase.
 *
 *   npm run build && node bench/serve-load.js [--jobs 2000] [--clients 64]
 *     [--queries 20000] [--stores 2] [--images 2] [--gpu-delay 0] [--concurrency 64] [--warmup 200]
 *     [--tabs 0] [--ab 0]
 *
 * `--tabs N` keeps N dashboard tabs open during the measured phases: each
 * loaded the page, its files and the jobs list, and holds an event stream
 * (every other one on a job page). A list tab on its first page, unfiltered,
 * as these are, is kept exact by the events alone and reloads nothing. `--ab R` (with `--tabs N`) instead
 * opens the tabs only for every other block of status queries, R blocks of
 * each kind, while the jobs run: the two kinds of block meet the same server
 * in the same moment, which a busy machine's noise cannot tell apart.
 *
 * `SERVE_NODE_ARGS='--cpu-prof --cpu-prof-dir=bench/out'` profiles the server.
 *
 * The server runs as a child process (`node bin/imgjob.js serve`) on a fresh
 * database in a temporary folder; the images (thumbnails) come from the
 * benchmark's image server, a process of its own on 127.0.0.1 (hence
 * `--allow-private`), so neither server's work is charged to this client.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Pool } from 'undici';

import { imagePath, loadCatalog } from './catalog.js';
import { spawnImageServer } from './server.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

const { values: flags } = parseArgs({
  options: {
    jobs: { type: 'string', default: '2000' },
    clients: { type: 'string', default: '64' },
    queries: { type: 'string', default: '20000' },
    stores: { type: 'string', default: '2' },
    images: { type: 'string', default: '2' },
    'gpu-delay': { type: 'string', default: '0' },
    concurrency: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '200' },
    tabs: { type: 'string', default: '0' },
    ab: { type: 'string', default: '0' },
  },
});
const JOBS = Number(flags.jobs);
const CLIENTS = Number(flags.clients);
const QUERIES = Number(flags.queries);
const STORES = Number(flags.stores);
const IMAGES_PER_STORE = Number(flags.images);

const scratch = await mkdtemp(join(tmpdir(), 'imgjob-serve-load-'));
const catalog = loadCatalog();
const images = await spawnImageServer();
const server = await startServe(join(scratch, 'load.db'));
const pool = new Pool(server.url, { connections: CLIENTS, pipelining: 1 });

try {
  console.log(
    `imgjob serve load test: ${JOBS} jobs of ${STORES} stores × ${IMAGES_PER_STORE} images, ` +
      `${CLIENTS} concurrent clients, gpu-delay ${flags['gpu-delay']}, -c ${flags.concurrency}`,
  );
  /** @type {number[]} */
  const ids = [];
  // Not measured: opens the client's connections and lets V8 optimise the hot paths.
  await phase(Number(flags.warmup), async (n) => {
    const { status, body } = await post('/api/submit/', manifestOf(JOBS + n));
    if (status !== 201)
      throw new Error(`warm-up submit answered ${status}: ${JSON.stringify(body)}`);
  });
  const AB = Number(flags.ab);
  const tabs = await openTabs(AB > 0 ? 0 : Number(flags.tabs), JOBS + Number(flags.warmup));
  const cpuBefore = serverCpuSeconds();
  const started = performance.now();

  const submit = await phase(JOBS, async (n) => {
    const { status, body } = await post('/api/submit/', manifestOf(n));
    if (status !== 201) throw new Error(`submit answered ${status}: ${JSON.stringify(body)}`);
    ids.push(/** @type {{ job_id: number }} */ (body).job_id);
  });

  const seen = { ongoing: 0, completed: 0, failed: 0 };
  /** @type {{ without: Awaited<ReturnType<typeof phase>>[], with: Awaited<ReturnType<typeof phase>>[] }} */
  const blocks = { without: [], with: [] };
  for (let round = 0; round < AB; round++) {
    const query = async (/** @type {number} */ n) => {
      const { status: code } = await get(`/api/status?jobid=${ids[n % ids.length] ?? 0}`);
      if (code !== 200) throw new Error(`status answered ${code}`);
    };
    blocks.without.push(await phase(QUERIES / (2 * AB), query));
    const open = await openTabs(Number(flags.tabs), ids[round % ids.length] ?? 1);
    blocks.with.push(await phase(QUERIES / (2 * AB), query));
    await open.close();
  }
  const status = await phase(AB > 0 ? 0 : QUERIES, async (n) => {
    const id = ids[n % ids.length] ?? 0;
    const { status: code, body } = await get(`/api/status?jobid=${id}`);
    if (code !== 200) throw new Error(`status answered ${code}`);
    const state = /** @type {{ status: keyof typeof seen }} */ (body).status;
    seen[state]++;
  });

  // Every job to its end: /healthz counts the jobs still running.
  for (;;) {
    const { body } = await get('/healthz');
    if (/** @type {{ running_jobs: number }} */ (body).running_jobs === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const totalMs = performance.now() - started;
  const cpuUsed = serverCpuSeconds() - cpuBefore;
  const failed = await countFailed(ids);
  const tabStats = await tabs.close();

  console.log('');
  console.log('| phase | requests | wall | rate | p50 | p99 | max |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  console.log(row('POST /api/submit/', submit));
  if (AB > 0) {
    for (const [kind, list] of /** @type {const} */ ([
      ['no tabs', blocks.without],
      [`${flags.tabs} tabs`, blocks.with],
    ]))
      list.forEach((block, round) =>
        console.log(row(`GET /api/status, ${kind}, block ${round + 1}`, block)),
      );
  } else console.log(row('GET /api/status', status));
  console.log('');
  console.log(`status answers during the run: ${JSON.stringify(seen)}`);
  // The warm-up jobs run on too; every job counts, from the first measured submission.
  const jobCount = JOBS + Number(flags.warmup);
  const imageCount = jobCount * STORES * IMAGES_PER_STORE;
  console.log(
    `all ${jobCount} jobs (${imageCount} images) finished ${(totalMs / 1000).toFixed(2)} s after the first submission ` +
      `(${Math.round(imageCount / (totalMs / 1000))} images/s); failed jobs: ${failed}`,
  );
  // CPU time is steadier than wall time on a busy machine.
  if (cpuUsed >= 0)
    console.log(
      `server CPU (user+sys) from the first submission to the last job's end: ${cpuUsed.toFixed(2)} s`,
    );
  if (tabStats.tabs > 0) {
    console.log(
      `${tabStats.tabs} dashboard tabs open throughout: ${tabStats.events} events (${(tabStats.bytes / 1e6).toFixed(1)} MB) received`,
    );
  }
} finally {
  await pool.close();
  server.child.kill('SIGTERM');
  await new Promise((resolve) => server.child.once('close', resolve));
  await images.close();
  await rm(scratch, { recursive: true, force: true });
}

/**
 * Runs `task(0…count-1)` over CLIENTS concurrent workers, timing each call.
 * @param {number} count
 * @param {(n: number) => Promise<void>} task
 * @returns {Promise<{ count: number, wallMs: number, latencies: number[] }>}
 */
async function phase(count, task) {
  /** @type {number[]} */
  const latencies = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (next < count) {
        const n = next++;
        const t0 = performance.now();
        await task(n);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { count, wallMs: performance.now() - started, latencies: latencies.sort((a, b) => a - b) };
}

/**
 * @param {string} name
 * @param {{ count: number, wallMs: number, latencies: number[] }} result
 */
function row(name, { count, wallMs, latencies }) {
  /** @param {number} q */
  const at = (q) =>
    `${(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(1)} ms`;
  const rate = Math.round(count / (wallMs / 1000));
  return `| ${name} | ${count} | ${(wallMs / 1000).toFixed(2)} s | ${rate}/s | ${at(0.5)} | ${at(0.99)} | ${at(1)} |`;
}

/** @param {number} n */
function manifestOf(n) {
  const visits = Array.from({ length: STORES }, (_, store) => ({
    store_id: `S${n}-${store}`,
    image_url: Array.from(
      { length: IMAGES_PER_STORE },
      (_, image) =>
        `${images.origin}${imagePath(catalog, 'thumb', (n * STORES + store) * IMAGES_PER_STORE + image)}`,
    ),
    visit_time: '2024-11-15T10:00:00Z',
  }));
  return { count: visits.length, visits };
}

/** CPU seconds the server process has used so far (Linux /proc), or NaN. */
function serverCpuSeconds() {
  try {
    const fields =
      readFileSync(`/proc/${server.child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime: fields 14 and 15 of stat, in clock ticks (100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Opens `count` dashboard tabs, each on its own connections (a browser's).
 * @param {number} count
 * @param {number} watchJob a job id for the tabs on a job page
 */
async function openTabs(count, watchJob) {
  const tabs = await Promise.all(
    Array.from({ length: count }, async (_, k) => {
      for (const path of ['/', '/assets/app.js', '/assets/app.css', '/api/overview?limit=50'])
        await (await fetch(`${server.url}${path}`)).arrayBuffer();
      const controller = new AbortController();
      const res = await fetch(`${server.url}/api/events${k % 2 ? `?job=${watchJob}` : ''}`, {
        signal: controller.signal,
      });
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
      const tab = { bytes: 0, events: 0, controller, done: Promise.resolve() };
      const decoder = new TextDecoder();
      const body = /** @type {AsyncIterable<Uint8Array>} */ (res.body);
      tab.done = (async () => {
        try {
          for await (const chunk of body) {
            tab.bytes += chunk.length;
            const text = decoder.decode(chunk, { stream: true });
            tab.events += text.split('\ndata: ').length - 1 + (text.startsWith('data: ') ? 1 : 0);
          }
        } catch {
          // Closed at the end.
        }
      })();
      return tab;
    }),
  );
  return {
    async close() {
      for (const tab of tabs) tab.controller.abort();
      await Promise.all(tabs.map((tab) => tab.done));
      const sum = (/** @type {'bytes' | 'events'} */ key) =>
        tabs.reduce((total, tab) => total + tab[key], 0);
      return {
        tabs: tabs.length,
        bytes: sum('bytes'),
        events: sum('events'),
      };
    },
  };
}

/** @param {readonly number[]} jobIds */
async function countFailed(jobIds) {
  let failed = 0;
  for (const id of jobIds) {
    const { body } = await get(`/api/status?jobid=${id}`);
    if (/** @type {{ status: string }} */ (body).status !== 'completed') failed++;
  }
  return failed;
}

/**
 * @param {string} path
 * @param {unknown} body
 */
async function post(path, body) {
  const res = await pool.request({
    path,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: await res.body.json() };
}

/** @param {string} path */
async function get(path) {
  const res = await pool.request({ path, method: 'GET' });
  return { status: res.statusCode, body: await res.body.json() };
}

/**
 * Starts the server and waits for the line that gives its URL.
 * @param {string} db
 * @returns {Promise<{ child: import('node:child_process').ChildProcess, url: string }>}
 */
function startServe(db) {
  const args = ['bin/imgjob.js', 'serve', '--port', '0', '--db', db, '--allow-private'];
  args.push('--gpu-delay', flags['gpu-delay'] ?? '0', '-c', flags.concurrency ?? '64');
  // SERVE_NODE_ARGS='--cpu-prof' profiles the server.
  const nodeArgs = process.env.SERVE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stderr?.setEncoding('utf8').on('data', (/** @type {string} */ chunk) => {
      output += chunk;
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url) resolve({ child, url });
    });
    child.once('close', (code) => {
      reject(new Error(`imgjob serve exited (${code}) before listening:\n${output}`));
    });
  });
}
