// @ts-check
/**
 * One measured run of each kind: imgjob on a workload's manifest (checked
 * before anything is taken from it), the reference loop on the same URLs,
 * imgjob's start-up, a profiled run, and the warm-up of the image server.
 */
import { spawnSync } from 'node:child_process';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';

import { imagePath } from './catalog.js';
import { median, seconds } from './figures.js';
import { summariseProfile } from './profile.js';
import { fifoMakespan, lptMakespan } from './schedule.js';
import { runMeasured } from './spawn.js';
import { verifyRun } from './verify.js';
import { manifestOf, urlsOf } from './workloads.js';

/** @typedef {import('./workloads.js').Workload} Workload */
/** @typedef {import('./workloads.js').WorkloadId} WorkloadId */
/** @typedef {import('./workloads.js').Manifest} Manifest */
/** @typedef {import('./figures.js').Rep} Rep */
/** @typedef {import('./server.js').ImageServer} ImageServer */
/** @typedef {import('./catalog.js').Catalog} Catalog */

const LOOP_WORKERS = 64;

/**
 * @typedef {object} Context
 * @property {ImageServer} server
 * @property {Catalog} catalog
 * @property {string} scratch
 * @property {Record<string, { file: string, manifest: Manifest, urlsFile: string }>} manifests
 * @property {string} repo The checkout: imgjob runs from it.
 * @property {string} outDir Where profiles go.
 * @property {string} rssBy
 */

/**
 * One repetition of a workload: imgjob, and the reference loop where the
 * workload compares with one (W3, W4: full bodies; W5: Range, plus W3's own
 * run of the same repetition for the bytes).
 *
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {Partial<Record<WorkloadId, Rep[]>>} earlier
 * @returns {Promise<Rep>}
 */
export async function runWorkload(ctx, workload, earlier) {
  const durations = workload.storeSizes.map((size) => size * workload.gpuDelayMs);
  /** @type {Partial<Rep>} */
  const extra = {};
  if (workload.id === 'W1' || workload.id === 'W1m') extra.boundMs = Math.max(...durations);
  if (workload.id === 'W2') {
    extra.boundMs = lptMakespan(durations, workload.machines);
    extra.fifoMs = fifoMakespan(durations, workload.machines);
  }
  const loopMode = { W3: 'full', W3m: 'full', W4: 'full', W5: 'range', W5m: 'range' }[
    /** @type {string} */ (workload.id)
  ];
  // The loop and imgjob take turns going first, so a drift in the machine's load does not favour one.
  const loopFirst = (earlier[workload.id]?.length ?? 0) % 2 === 0;
  /** @type {Rep | undefined} */
  let measured;
  if (!loopFirst) measured = await runImgjob(ctx, workload, []);
  if (loopMode === 'full' || loopMode === 'range') {
    const loop = await runLoop(ctx, workload, loopMode);
    extra.loopWallMs = loop.wallMs;
    extra.loopInnerMs = loop.innerMs;
    extra.loopPeakRssMb = loop.peakRssMb;
    extra.loopCpuMs = loop.cpuMs;
  }
  if (workload.smallSizes) {
    // W6: the smaller job first, then the big one; their time per image is compared.
    const small = await runImgjob(ctx, workload, [], `${workload.id}-small`);
    extra.smallWallMs = small.wallMs;
    extra.smallImages = small.images;
    extra.smallPeakRssMb = small.peakRssMb;
    extra.smallSavingMs = small.savingMs;
    extra.smallCpuMs = small.cpuMs;
    extra.smallWrittenBytes = small.writtenBytes;
  }
  measured ??= await runImgjob(ctx, workload, []);
  if (workload.id === 'W3') {
    // Paired: the same run with --metrics-port, in this repetition, going
    // first or second in turn. What metrics cost is its CPU over the plain run's.
    const metricsFirst = (earlier[workload.id]?.length ?? 0) % 2 === 1;
    const plain = metricsFirst ? undefined : await runImgjob(ctx, workload, []);
    const withMetrics = await runImgjob(ctx, workload, [], undefined, ['--metrics-port', '0']);
    const base = plain ?? (await runImgjob(ctx, workload, []));
    extra.metricsCpuMs = withMetrics.cpuMs;
    extra.metricsWallMs = withMetrics.wallMs;
    extra.plainCpuMs = base.cpuMs;
  }
  if (workload.id === 'W5' || workload.id === 'W5m') {
    const w3 = (workload.id === 'W5' ? earlier.W3 : earlier.W3m)?.at(-1);
    if (w3) {
      extra.w3WallMs = w3.wallMs;
      extra.w3Bytes = w3.bytes;
    }
  }
  return { ...measured, ...extra };
}

/**
 * Runs imgjob on the workload's manifest as a user would, and checks its results.
 *
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {readonly string[]} nodeFlags
 * @param {string} [key] Which manifest: by default the workload's.
 * @param {readonly string[]} [runArgs] More `imgjob run` options.
 * @returns {Promise<Rep>}
 */
async function runImgjob(
  ctx,
  workload,
  nodeFlags,
  key = workload.manifestOf ?? workload.id,
  runArgs = [],
) {
  const entry = ctx.manifests[key];
  if (!entry) throw new Error(`no manifest written for ${key}`);
  const { file, manifest } = entry;
  const results = join(ctx.scratch, `${key}.results.json`);
  await ctx.server.stats(true);
  const run = await runMeasured(
    [
      process.execPath,
      ...nodeFlags,
      'bin/imgjob.js',
      'run',
      file,
      '-o',
      results,
      '--force',
      '--json',
      ...workload.options,
      ...runArgs,
    ],
    // Asks imgjob for its own save statistics; a build without that hook ignores it.
    { cwd: ctx.repo, scratch: ctx.scratch, env: { IMGJOB_STATS: '1' } },
  );
  ctx.rssBy = run.rssBy;
  const served = await ctx.server.stats(true);
  const facts = await verifyRun(run, results, manifest, {
    catalog: ctx.catalog,
    gpuDelayMs: workload.gpuDelayMs,
  });
  return {
    wallMs: run.wallMs,
    images: facts.images,
    bytes: facts.bytes,
    retries: facts.retries,
    serverBytes: served.bytes,
    connections: served.connections,
    peakRssMb: run.peakRssMb,
    cpuMs: run.cpuMs,
    writtenBytes: run.writtenBytes,
    savingMs: reportedSavingMs(run.stderr),
  };
}

/**
 * The time imgjob says it spent saving results files, when it says so: the
 * `imgjob: stats {"savingMs": …, "journalMs": …}` line that `IMGJOB_STATS=1` asks for (one
 * per job). Without such a line, the save share comes from a profile.
 *
 * @param {string} stderr
 * @returns {number | undefined}
 */
function reportedSavingMs(stderr) {
  const lines = [...stderr.matchAll(/^imgjob: stats (\{.*\})\s*$/gm)];
  if (lines.length === 0) return undefined;
  return lines.reduce((sum, [, json = '{}']) => {
    // Snapshots and journal lines both are the cost of keeping the file.
    const stats = /** @type {{ savingMs?: unknown, journalMs?: unknown }} */ (JSON.parse(json));
    const journalMs = typeof stats.journalMs === 'number' ? stats.journalMs : 0;
    return sum + (typeof stats.savingMs === 'number' ? stats.savingMs + journalMs : NaN);
  }, 0);
}

/**
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {'full' | 'range'} mode
 * @returns {Promise<{ wallMs: number, innerMs: number, peakRssMb: number | undefined, cpuMs: number | undefined }>}
 */
async function runLoop(ctx, workload, mode) {
  const { urlsFile, manifest } = manifestFor(ctx, workload);
  return runLoopOn(ctx, urlsFile, urlsOf(manifest).length, mode);
}

/**
 * @param {Context} ctx
 * @param {string} urlsFile
 * @param {number} images
 * @param {'full' | 'range'} mode
 * @returns {Promise<{ wallMs: number, innerMs: number, peakRssMb: number | undefined, cpuMs: number | undefined }>}
 */
async function runLoopOn(ctx, urlsFile, images, mode) {
  const run = await runMeasured(
    [process.execPath, 'bench/loop.js', urlsFile, mode, String(LOOP_WORKERS)],
    {
      cwd: ctx.repo,
      scratch: ctx.scratch,
    },
  );
  /** @type {{ images?: number, ms?: number }} */
  let out = {};
  try {
    out = /** @type {{ images?: number, ms?: number }} */ (JSON.parse(run.stdout));
  } catch {
    // Reported below.
  }
  if (run.code !== 0 || out.images !== images) {
    throw new Error(
      `the reference loop (${mode}) failed with code ${run.code}:\n${run.stderr.trim()}`,
    );
  }
  return { wallMs: run.wallMs, innerMs: out.ms ?? NaN, peakRssMb: run.peakRssMb, cpuMs: run.cpuMs };
}

/**
 * imgjob's own start-up, the median of three `imgjob --version`.
 *
 * @param {Context} ctx
 * @returns {Promise<number>} milliseconds
 */
export async function measureStartup(ctx) {
  const times = [];
  for (let i = 0; i < 3; i++) {
    const run = await runMeasured([process.execPath, 'bin/imgjob.js', '--version'], {
      cwd: ctx.repo,
      scratch: ctx.scratch,
    });
    times.push(run.wallMs);
  }
  return median(times);
}

/**
 * Start-up cost as CPU time: `imgjob run` on an empty manifest against
 * `node -e 0`, each run `times` times in a row under one shell whose
 * `times` builtin sums the children's user + system CPU (getrusage: finer
 * than GNU time's 10 ms). The two alternate in rounds, medians taken.
 *
 * @param {Context} ctx
 * @param {number} [rounds]
 * @returns {Promise<{ imgjobMs: number, nodeMs: number, ratio: number, metricsMs: number }>}
 */
export async function measureStartupCpu(ctx, rounds = 5) {
  const manifest = join(ctx.scratch, 'empty.json');
  await writeFile(manifest, '{"count":0,"visits":[]}');
  const results = join(ctx.scratch, 'empty.results.json');
  const imgjob = [process.execPath, 'bin/imgjob.js', 'run', manifest, '-o', results, '--force'];
  const node = [process.execPath, '-e', '0'];
  /** @type {number[]} */
  const imgjobMs = [];
  /** @type {number[]} */
  const nodeMs = [];
  /** @type {number[]} */
  const metricsMs = [];
  for (let round = 0; round < rounds; round++) {
    nodeMs.push(childCpuMs(ctx.repo, node, 5));
    imgjobMs.push(childCpuMs(ctx.repo, imgjob, 5));
    // What --metrics-port adds once per run: prom-client, its default metrics, the endpoint.
    metricsMs.push(childCpuMs(ctx.repo, [...imgjob, '--metrics-port', '0'], 5));
  }
  const ratio = median(imgjobMs) / median(nodeMs);
  return {
    imgjobMs: median(imgjobMs),
    nodeMs: median(nodeMs),
    ratio,
    metricsMs: median(metricsMs),
  };
}

/**
 * User + system CPU of one run of `argv`, the mean of `times` runs.
 *
 * @param {string} cwd
 * @param {readonly string[]} argv
 * @param {number} times
 */
function childCpuMs(cwd, argv, times) {
  const script = `for i in $(seq ${times}); do "$@" >/dev/null 2>&1; done; times`;
  const out = spawnSync('bash', ['-c', script, 'bash', ...argv], { cwd, encoding: 'utf8' });
  // `times`: the shell's own user/system, then its children's.
  const line = out.stdout.trim().split('\n')[1] ?? '';
  const [user = NaN, system = NaN] = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map(
    ([, minutes = '0', secs = '0']) => Number(minutes) * 60 + Number(secs),
  );
  return ((user + system) * 1000) / times;
}

/**
 * The image server's JIT and the OS caches warm up on a first pass over
 * both image sets (thousands of requests), so the first measured run is not
 * charged for them.
 *
 * @param {Context} ctx
 */
export async function warmUp(ctx) {
  const started = performance.now();
  for (const [set, count, modes] of /** @type {const} */ ([
    ['img', 1500, ['full', 'range']],
    ['mix', 1500, ['full', 'range']],
    ['thumb', 10_000, ['full']],
  ])) {
    const urls = Array.from(
      { length: count },
      (_, n) => `${ctx.server.origin}${imagePath(ctx.catalog, set, n)}`,
    );
    await ctx.server.serveUrls(urls);
    const file = join(ctx.scratch, `warm-up-${set}.urls.json`);
    await writeFile(file, JSON.stringify(urls));
    for (const mode of modes) await runLoopOn(ctx, file, count, mode);
  }
  log(`warm-up: ${seconds(performance.now() - started)}`);
}

/**
 * One extra run under `node --cpu-prof`, summed up.
 *
 * @param {Context} ctx
 * @param {Workload} workload
 */
export async function profileWorkload(ctx, workload) {
  const dir = join(ctx.outDir, 'prof', workload.id);
  await rm(dir, { recursive: true, force: true });
  await runImgjob(ctx, workload, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const [name] = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no .cpuprofile in ${dir}`);
  log(`profile: ${join(dir, name)}`);
  return summariseProfile(join(dir, name), 20);
}

/**
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {Record<WorkloadId, Workload>} all
 */
export async function writeManifest(ctx, workload, all) {
  const source = workload.manifestOf ? all[workload.manifestOf] : workload;
  if (ctx.manifests[source.id]) return;
  const manifest = manifestOf(source, ctx.catalog, ctx.server.origin);
  const file = join(ctx.scratch, `${source.id}.json`);
  const urlsFile = join(ctx.scratch, `${source.id}.urls.json`);
  await ctx.server.serveUrls(urlsOf(manifest));
  await writeFile(file, JSON.stringify(manifest));
  await writeFile(urlsFile, JSON.stringify(urlsOf(manifest)));
  ctx.manifests[source.id] = { file, manifest, urlsFile };
  if (source.smallSizes) {
    // Its first stores: the same URLs, already served.
    const small = manifestOf(
      { ...source, storeSizes: source.smallSizes },
      ctx.catalog,
      ctx.server.origin,
    );
    const smallFile = join(ctx.scratch, `${source.id}-small.json`);
    await writeFile(smallFile, JSON.stringify(small));
    ctx.manifests[`${source.id}-small`] = { file: smallFile, manifest: small, urlsFile };
  }
}

/**
 * @param {Context} ctx
 * @param {Workload} workload
 */
function manifestFor(ctx, workload) {
  const entry = ctx.manifests[workload.manifestOf ?? workload.id];
  if (!entry) throw new Error(`no manifest written for ${workload.id}`);
  return entry;
}

/**
 * @param {string} message
 */
export function log(message) {
  console.error(`[bench] ${message}`);
}
