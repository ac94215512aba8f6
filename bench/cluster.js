// @ts-check
/**
 * `npm run bench:cluster`: imgjob on many machines, simulated on one. Starts
 * the image server (bench/server.js) and a redis-server of its own (free
 * loopback port, no persistence, noeviction), then:
 *
 * 1. Scaling: a sleep-bound job (GPU 100 ms, thumbnails) run by a
 *    coordinator (`run --queue`) over 1, 2 and 4 `imgjob worker` processes,
 *    each `-c 8`. Target: throughput ≥ 0.9 × N of one worker's.
 * 2. Overhead: the same job at GPU 0 on one worker (-c 8) against the
 *    single-machine `run -c 8`: the queue's cost per image.
 *
 * Every run's results file is checked (every image `done`). Figures are
 * printed; BENCHMARKS.md quotes them ("Many machines").
 *
 *   node bench/cluster.js [--stores n] [--images n] [--runs n]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';

import { imagePath, loadCatalog } from './catalog.js';
import { spawnImageServer } from './server.js';

import { redisServerPath, startRedis } from '../scripts/redis-server.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(repo, 'bin', 'imgjob.js');
const WORKER_SLOTS = 8;
const WORKER_COUNTS = [1, 2, 4];

const { values: flags } = parseArgs({
  options: {
    stores: { type: 'string', default: '128' },
    images: { type: 'string', default: '10' },
    runs: { type: 'string', default: '1' },
  },
});
const STORES = Number(flags.stores);
const IMAGES = Number(flags.images);
const RUNS = Number(flags.runs);

process.exitCode = await main().catch((/** @type {unknown} */ error) => {
  console.error(
    `\nbench:cluster failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  return 1;
});

async function main() {
  const redisBinary = redisServerPath();
  if (!redisBinary) {
    console.error('bench:cluster needs redis-server (apt-get install redis-server)');
    return 2;
  }
  const scratch = await mkdtemp(join(tmpdir(), 'imgjob-cluster-'));
  const server = await spawnImageServer();
  const redis = await startRedis(redisBinary);
  const url = redis.url;
  try {
    const manifest = join(scratch, 'job.json');
    await writeFile(manifest, JSON.stringify(jobManifest(server.origin)));
    const oneImage = {
      count: 1,
      visits: [{ store_id: 'T', image_url: [`${server.origin}/thumb/0.jpg`] }],
    };
    await writeFile(join(scratch, 'tiny.json'), JSON.stringify(oneImage));
    const images = STORES * IMAGES;
    console.log(
      `bench:cluster — ${STORES} stores × ${IMAGES} images = ${images}, ${cpus().length} cores, load ${loadavg()[0]?.toFixed(1)}`,
    );

    /** @type {Record<number, number[]>} */
    const rates = {};
    /** @type {Record<number, number[]>} */
    const cpuShares = {};
    /** @type {Record<number, number[]>} */
    const steadyRates = {};
    for (let rep = 0; rep < RUNS; rep++) {
      for (const count of WORKER_COUNTS) {
        const { ms, cpuMs, fixedMs } = await timedOnCluster(url, count, manifest, scratch, [
          '--gpu-delay',
          '100',
        ]);
        (rates[count] ??= []).push(images / (ms / 1000));
        (cpuShares[count] ??= []).push(cpuMs / ms);
        (steadyRates[count] ??= []).push(images / ((ms - fixedMs) / 1000));
        console.log(
          `  GPU 100 ms, ${count} worker(s) × -c ${WORKER_SLOTS}: ${(ms / 1000).toFixed(2)} s, CPU ${(cpuMs / 1000).toFixed(2)} s (${(cpuMs / images).toFixed(2)} ms per image), fixed cost ${(fixedMs / 1000).toFixed(2)} s, load ${loadavg()[0]?.toFixed(1)}`,
        );
      }
    }
    const one = median(rates[1] ?? []);
    console.log('\nScaling (GPU 100 ms; ideal per worker: 8 slots × 10 images/s = 80 images/s)');
    console.log(
      '| workers | images/s | × one worker | target | without the fixed cost: images/s, × one | CPU used (cores) |',
    );
    console.log('| --- | --- | --- | --- | --- | --- |');
    const steadyOne = median(steadyRates[1] ?? []);
    for (const count of WORKER_COUNTS) {
      const rate = median(rates[count] ?? []);
      const factor = rate / one;
      console.log(
        `| ${count} | ${rate.toFixed(1)} | ${factor.toFixed(2)} (${(factor / count).toFixed(2)} × N) | ≥ ${(0.9 * count).toFixed(1)} ${factor >= 0.9 * count ? 'met' : 'MISSED'} | ${median(steadyRates[count] ?? []).toFixed(1)}, ${(median(steadyRates[count] ?? []) / steadyOne).toFixed(2)} | ${median(cpuShares[count] ?? []).toFixed(2)} |`,
      );
    }

    /** @type {number[]} */ const local = [];
    /** @type {number[]} */ const queued = [];
    for (let rep = 0; rep < RUNS; rep++) {
      local.push((await timedLocal(manifest, scratch)).ms);
      queued.push((await timedOnCluster(url, 1, manifest, scratch, ['--gpu-delay', '0'])).ms);
    }
    const localMs = median(local);
    const queuedMs = median(queued);
    console.log('\nOverhead at GPU 0 (one worker -c 8 against `run -c 8` on one machine)');
    console.log('| run | wall | per image |');
    console.log('| --- | --- | --- |');
    console.log(
      `| single machine | ${(localMs / 1000).toFixed(2)} s | ${(localMs / images).toFixed(2)} ms |`,
    );
    console.log(
      `| queue, 1 worker | ${(queuedMs / 1000).toFixed(2)} s | ${(queuedMs / images).toFixed(2)} ms |`,
    );
    console.log(
      `ratio queue / single machine: ${(queuedMs / localMs).toFixed(2)}; queue overhead ${((queuedMs - localMs) / images).toFixed(2)} ms per image`,
    );
    return 0;
  } finally {
    await server.close();
    await redis.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** @param {string} origin */
function jobManifest(origin) {
  const catalog = loadCatalog();
  const visits = Array.from({ length: STORES }, (_, store) => ({
    store_id: `S${String(store).padStart(5, '0')}`,
    image_url: Array.from(
      { length: IMAGES },
      (_, index) => `${origin}${imagePath(catalog, 'thumb', store * IMAGES + index)}`,
    ),
  }));
  return { count: visits.length, visits };
}

/**
 * Starts `count` workers, runs the coordinator to its end and stops them.
 * Wall time is the coordinator's, from spawn to exit, workers already up.
 *
 * @param {string} url @param {number} count @param {string} manifest @param {string} scratch
 * @param {string[]} extra
 */
async function timedOnCluster(url, count, manifest, scratch, extra) {
  const workers = await Promise.all(Array.from({ length: count }, () => startWorker(url)));
  try {
    const out = join(scratch, `cluster-${count}.results.json`);
    const args = ['run', manifest, '-o', out, '--force', '-c', '64', '--queue', url, ...extra];
    const run = await timedRun(args, out, scratch);
    const workerCpuMs = workers.reduce((sum, worker) => sum + cpuMsOf(worker.pid), 0);
    // What a run costs whatever its size (start, checks, first hand-out, final
    // save): a one-image job on the same workers.
    const tiny = join(scratch, 'tiny.json');
    const tinyOut = join(scratch, 'tiny.results.json');
    const fixed = await timedRun(
      ['run', tiny, '-o', tinyOut, '--force', '--queue', url, '--gpu-delay', '0'],
      tinyOut,
      scratch,
      1,
    );
    return { ms: run.ms, cpuMs: run.cpuMs + workerCpuMs, fixedMs: fixed.ms };
  } finally {
    await Promise.all(workers.map((worker) => stopChild(worker)));
  }
}

/** @param {string} manifest @param {string} scratch */
async function timedLocal(manifest, scratch) {
  const out = join(scratch, 'local.results.json');
  return timedRun(
    ['run', manifest, '-o', out, '--force', '-c', String(WORKER_SLOTS), '--gpu-delay', '0'],
    out,
    scratch,
  );
}

/**
 * CPU time a live process used so far (user + system), from /proc.
 *
 * @param {number | undefined} pid
 */
function cpuMsOf(pid) {
  try {
    const fields =
      readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
        .split(') ')[1]
        ?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/**
 * @param {string[]} args @param {string} out @param {string} scratch
 * @param {number} [expected] images that must come out done
 */
async function timedRun(args, out, scratch, expected = STORES * IMAGES) {
  const timeFile = join(scratch, 'time.txt');
  const started = performance.now();
  const child = spawn(
    '/usr/bin/time',
    ['-f', '%U %S', '-o', timeFile, process.execPath, CLI, ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (/** @type {string} */ text) => (stderr += text));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  const ms = performance.now() - started;
  const [user = 0, system = 0] = readFileSync(timeFile, 'utf8')
    .trim()
    .split(/\s+/)
    .slice(-2)
    .map(Number);
  if (code !== 0) throw new Error(`imgjob ${args.join(' ')} exited ${String(code)}:\n${stderr}`);
  const document = JSON.parse(readFileSync(out, 'utf8'));
  if (document.counts.done !== expected) {
    throw new Error(`${out}: ${document.counts.done} of ${expected} images done`);
  }
  return { ms, cpuMs: (user + system) * 1000 };
}

/** @param {string} url @returns {Promise<import('node:child_process').ChildProcess>} */
function startWorker(url) {
  const child = spawn(
    process.execPath,
    [CLI, 'worker', '--queue', url, '-c', String(WORKER_SLOTS)],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (/** @type {string} */ text) => {
      output += text;
      if (output.includes('ready: ')) resolve(child);
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${String(code)}):\n${output}`)));
  });
}

/** @param {import('node:child_process').ChildProcess} child */
async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** @param {readonly number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}
