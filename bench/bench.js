// @ts-check
/**
 * `npm run bench`: imgjob at scale, measured as a user would run it. Starts
 * the image server (bench/server.js) in its own process, writes each
 * workload's manifest to a temp folder, runs `node bin/imgjob.js run …` on it
 * (and the reference undici loop where a workload compares with it), checks
 * that every image came out `done`, and prints the figures — each a ratio
 * measured in the same repetition, the median over repetitions — next to its
 * target. See BENCHMARKS.md.
 *
 *   node bench/bench.js [--quick] [--only W1,W3] [--runs n] [--profile] [--write-md] [--keep]
 *
 * Exits 1 when a run is broken (an image not done, a bad exit code); a
 * missed target is a finding, not a failure, unless --strict.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';

import { loadCatalog } from './catalog.js';
import { figuresOf, median, seconds } from './figures.js';
import { formatSummary, summariseProfile } from './profile.js';
import { describeMachine, renderTable, writeMarkdown } from './report.js';
import { fifoMakespan, lptMakespan } from './schedule.js';
import { spawnImageServer } from './server.js';
import { runMeasured } from './spawn.js';
import { verifyRun } from './verify.js';
import { defineWorkloads, manifestOf, urlsOf, WORKLOAD_IDS } from './workloads.js';

/** @typedef {import('./workloads.js').Workload} Workload */
/** @typedef {import('./workloads.js').WorkloadId} WorkloadId */
/** @typedef {import('./workloads.js').Manifest} Manifest */
/** @typedef {import('./figures.js').Rep} Rep */
/** @typedef {import('./server.js').ImageServer} ImageServer */
/** @typedef {import('./catalog.js').Catalog} Catalog */

const repo = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = join(repo, 'bench', 'out');
const LOOP_WORKERS = 64;

/**
 * @typedef {object} Context
 * @property {ImageServer} server
 * @property {Catalog} catalog
 * @property {string} scratch
 * @property {Record<string, { file: string, manifest: Manifest, urlsFile: string }>} manifests
 * @property {string} rssBy
 */

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    runs: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'write-md': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

process.exitCode = await main().catch((/** @type {unknown} */ error) => {
  console.error(`\nbench failed: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
});

/** @returns {Promise<number>} */
async function main() {
  if (flags.help) {
    console.log(
      'usage: node bench/bench.js [--quick] [--only W1,W3] [--runs n] [--profile] [--write-md] [--keep] [--strict]',
    );
    return 0;
  }
  if (!existsSync(join(repo, 'dist', 'cli.js'))) {
    console.error('imgjob is not built: run `npm run bench` (it builds first) or `npm run build`.');
    return 2;
  }
  const quick = flags.quick;
  const runs = Number(flags.runs ?? (quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`Expected \`--runs\` to be a whole number from 1 and up, got \`${String(flags.runs)}\``);
  const workloads = defineWorkloads(quick);
  const selected = selectWorkloads(flags.only);

  const catalog = loadCatalog();
  const server = await spawnImageServer();
  const scratch = await mkdtemp(join(tmpdir(), 'imgjob-bench-'));
  try {
    const ctx = { server, catalog, scratch, manifests: {}, rssBy: 'gnu-time' };
    for (const id of selected) await writeManifest(ctx, workloads[id], workloads);
    log(`image server ${server.origin}; manifests in ${scratch}`);

    const startup = [];
    for (let i = 0; i < 3; i++) startup.push((await runMeasured([process.execPath, 'bin/imgjob.js', '--version'], { cwd: repo, scratch })).wallMs);
    const startupMs = median(startup);
    log(`imgjob start-up (--version): ${startupMs.toFixed(0)} ms`);

    /** @type {Partial<Record<WorkloadId, Rep[]>>} */
    const reps = {};
    for (let run = 1; run <= runs; run++) {
      for (const id of selected) {
        const rep = await runWorkload(ctx, workloads[id], reps);
        (reps[id] ??= []).push(rep);
        log(`${id} run ${run}/${runs}: ${rep.images} images in ${seconds(rep.wallMs)} (${(rep.images / (rep.wallMs / 1000)).toFixed(0)} img/s, peak RSS ${rep.peakRssMb?.toFixed(0) ?? '?'} MB)`);
      }
    }

    /** @type {Record<string, import('./profile.js').ProfileSummary>} */
    const profiles = {};
    for (const id of selected) {
      if (id !== 'W4' && !flags.profile) continue;
      log(`${id}: one more run under --cpu-prof (not counted in the figures)`);
      profiles[id] = await profileWorkload(ctx, workloads[id]);
      console.error(formatSummary(profiles[id]));
    }

    const figures = selected.flatMap((id) => {
      const profile = profiles[id];
      const saveCost = id === 'W4' && profile ? saveCostOf(profile) : undefined;
      return figuresOf(workloads[id], reps[id] ?? [], { saveCost });
    });
    const report = {
      date: new Date().toISOString(),
      quick,
      runs,
      machine: describeMachine(),
      rssBy: ctx.rssBy,
      startupMs,
      figures,
      workloads: Object.fromEntries(selected.map((id) => [id, { config: configOf(workloads[id]), reps: reps[id] }])),
      profiles,
    };
    await mkdir(OUT_DIR, { recursive: true });
    await writeFile(join(OUT_DIR, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\n${renderTable(figures)}\n`);
    console.log(`(${runs === 1 ? '1 run' : `median of ${runs} runs`}; report: ${join('bench', 'out', 'report.json')})`);
    if (flags['write-md']) {
      await writeMarkdown(join(repo, 'BENCHMARKS.md'), report);
      console.log('BENCHMARKS.md updated.');
    }
    return flags.strict && figures.some((figure) => figure.met === false) ? 1 : 0;
  } finally {
    await server.close();
    if (flags.keep) log(`kept ${scratch}`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * One repetition of a workload: imgjob, and the reference loop where the
 * workload compares with one (W3: full bodies; W5: Range, plus W3's own run
 * of the same repetition for the bytes).
 *
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {Partial<Record<WorkloadId, Rep[]>>} earlier
 * @returns {Promise<Rep>}
 */
async function runWorkload(ctx, workload, earlier) {
  const durations = workload.storeSizes.map((size) => size * workload.gpuDelayMs);
  /** @type {Partial<Rep>} */
  const extra = {};
  if (workload.id === 'W1') extra.boundMs = Math.max(...durations);
  if (workload.id === 'W2') {
    extra.boundMs = lptMakespan(durations, workload.machines);
    extra.fifoMs = fifoMakespan(durations, workload.machines);
  }
  if (workload.id === 'W3' || workload.id === 'W5') {
    const loop = await runLoop(ctx, workload, workload.id === 'W3' ? 'full' : 'range');
    extra.loopWallMs = loop.wallMs;
    extra.loopInnerMs = loop.innerMs;
  }
  if (workload.id === 'W5') {
    const w3 = earlier.W3?.at(-1);
    if (w3) {
      extra.w3WallMs = w3.wallMs;
      extra.w3Bytes = w3.bytes;
    }
  }
  return { ...(await runImgjob(ctx, workload, [])), ...extra };
}

/**
 * Runs imgjob on the workload's manifest as a user would, and checks its results.
 *
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {readonly string[]} nodeFlags
 * @returns {Promise<Rep>}
 */
async function runImgjob(ctx, workload, nodeFlags) {
  const { file, manifest } = manifestFor(ctx, workload);
  const results = join(ctx.scratch, `${workload.id}.results.json`);
  await ctx.server.stats(true);
  const run = await runMeasured(
    [process.execPath, ...nodeFlags, 'bin/imgjob.js', 'run', file, '-o', results, '--force', '--json', ...workload.options],
    { cwd: repo, scratch: ctx.scratch },
  );
  ctx.rssBy = run.rssBy;
  const served = await ctx.server.stats(true);
  const facts = await verifyRun(run, results, manifest, { catalog: ctx.catalog, gpuDelayMs: workload.gpuDelayMs });
  return {
    wallMs: run.wallMs,
    images: facts.images,
    bytes: facts.bytes,
    retries: facts.retries,
    serverBytes: served.bytes,
    connections: served.connections,
    peakRssMb: run.peakRssMb,
  };
}

/**
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {'full' | 'range'} mode
 * @returns {Promise<{ wallMs: number, innerMs: number }>}
 */
async function runLoop(ctx, workload, mode) {
  const { urlsFile, manifest } = manifestFor(ctx, workload);
  const run = await runMeasured([process.execPath, 'bench/loop.js', urlsFile, mode, String(LOOP_WORKERS)], {
    cwd: repo,
    scratch: ctx.scratch,
  });
  const images = urlsOf(manifest).length;
  /** @type {{ images?: number, ms?: number }} */
  let out = {};
  try {
    out = /** @type {{ images?: number, ms?: number }} */ (JSON.parse(run.stdout));
  } catch {
    // Reported below.
  }
  if (run.code !== 0 || out.images !== images) {
    throw new Error(`the reference loop (${mode}) failed with code ${run.code}:\n${run.stderr.trim()}`);
  }
  return { wallMs: run.wallMs, innerMs: out.ms ?? NaN };
}

/**
 * One extra run under `node --cpu-prof`, summed up.
 *
 * @param {Context} ctx
 * @param {Workload} workload
 */
async function profileWorkload(ctx, workload) {
  const dir = join(OUT_DIR, 'prof', workload.id);
  await rm(dir, { recursive: true, force: true });
  await runImgjob(ctx, workload, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  const [name] = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile'));
  if (!name) throw new Error(`no .cpuprofile in ${dir}`);
  log(`profile: ${join(dir, name)}`);
  return summariseProfile(join(dir, name), 20);
}

/**
 * The save share from a profile: snapshots and the final save over the
 * profiled wall time (the journal lines are reported beside it).
 *
 * @param {import('./profile.js').ProfileSummary} profile
 * @returns {import('./figures.js').SaveCost}
 */
function saveCostOf(profile) {
  const { snapshotMs, finalMs, journalMs } = profile.results;
  return { saveShare: (snapshotMs + finalMs) / profile.durationMs, snapshotMs, finalMs, journalMs, durationMs: profile.durationMs };
}

/**
 * @param {Context} ctx
 * @param {Workload} workload
 * @param {Record<WorkloadId, Workload>} all
 */
async function writeManifest(ctx, workload, all) {
  const source = workload.manifestOf ? all[workload.manifestOf] : workload;
  if (ctx.manifests[source.id]) return;
  const manifest = manifestOf(source, ctx.catalog, ctx.server.origin);
  const file = join(ctx.scratch, `${source.id}.json`);
  const urlsFile = join(ctx.scratch, `${source.id}.urls.json`);
  await writeFile(file, JSON.stringify(manifest));
  await writeFile(urlsFile, JSON.stringify(urlsOf(manifest)));
  ctx.manifests[source.id] = { file, manifest, urlsFile };
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
 * `--only W1,W3`; W5 compares with W3, so it brings W3 along.
 *
 * @param {string | undefined} only
 * @returns {WorkloadId[]}
 */
function selectWorkloads(only) {
  if (only === undefined) return [...WORKLOAD_IDS];
  const asked = only.split(',').map((id) => id.trim().toUpperCase());
  const unknown = asked.filter((id) => !WORKLOAD_IDS.some((known) => known === id));
  if (unknown.length > 0) throw new Error(`Expected \`--only\` to list workloads of ${WORKLOAD_IDS.join(', ')}, got \`${unknown.join(', ')}\``);
  return WORKLOAD_IDS.filter((id) => asked.includes(id) || (id === 'W3' && asked.includes('W5')));
}

/**
 * @param {Workload} workload
 */
function configOf(workload) {
  const sizes = workload.storeSizes;
  return {
    title: workload.title,
    stores: sizes.length,
    images: sizes.reduce((sum, size) => sum + size, 0),
    largestStore: Math.max(...sizes),
    imageSet: workload.set,
    options: workload.options,
  };
}

/**
 * @param {string} message
 */
function log(message) {
  console.error(`[bench] ${message}`);
}
