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
 *   node bench/bench.js [--quick] [--only W1,W3 | --only web] [--runs n] [--profile] [--write-md] [--keep] [--strict]
 *
 * Exits 1 when a run is broken (an image not done, a bad exit code); a
 * missed target is a finding, not a failure, unless --strict.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';

import { loadCatalog } from './catalog.js';
import { figuresOf, saveCostOf, seconds, startupFigure } from './figures.js';
import { formatSummary } from './profile.js';
import { describeMachine, renderTable, writeMarkdown } from './report.js';
import {
  log,
  measureStartup,
  measureStartupCpu,
  profileWorkload,
  runWorkload,
  warmUp,
  writeManifest,
} from './runs.js';
import { hasNginx, NGINX, spawnNginx } from './nginx.js';
import { spawnImageServer } from './server.js';
import { defineWorkloads, WORKLOAD_IDS } from './workloads.js';

/** @typedef {import('./workloads.js').Workload} Workload */
/** @typedef {import('./workloads.js').WorkloadId} WorkloadId */
/** @typedef {import('./figures.js').Rep} Rep */

const repo = fileURLToPath(new URL('..', import.meta.url));
const OUT_DIR = join(repo, 'bench', 'out');

const USAGE =
  'usage: node bench/bench.js [--quick] [--only W1,W3 | --only web] [--runs n] [--profile] [--write-md] [--keep] [--strict]';

/** Bad arguments: exit 2 with the usage line, no stack trace. */
class UsageError extends Error {}

const flags = readFlags(process.argv.slice(2));

process.exitCode = await main().catch((/** @type {unknown} */ error) => {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof UsageError) {
    console.error(`${message}\n${USAGE}`);
    return 2;
  }
  console.error(`\nbench failed: ${message}`);
  return 1;
});

/** @returns {Promise<number>} */
async function main() {
  if (flags instanceof UsageError) throw flags;
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (!existsSync(join(repo, 'dist', 'cli', 'main.js'))) {
    console.error('imgjob is not built: run `npm run bench` (it builds first) or `npm run build`.');
    return 2;
  }
  const quick = flags.quick;
  // The simulated web of many hosts is a bench of its own (bench/web.js).
  if (flags.only?.trim().toLowerCase() === 'web') {
    return (await import('./web.js')).runWebBench({ quick: Boolean(quick) });
  }
  const runs = Number(flags.runs ?? (quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1)
    throw new UsageError(
      `Expected \`--runs\` to be a whole number from 1 and up, got \`${String(flags.runs)}\``,
    );
  const workloads = defineWorkloads(quick);
  const selected = selectWorkloads(flags.only);

  const loadAtStart = loadavg().map((load) => Number(load.toFixed(2)));
  const catalog = loadCatalog();
  const server = hasNginx() ? await spawnNginx(catalog) : await spawnImageServer();
  if (server.kind === 'node') {
    log(
      `NOTICE: ${NGINX} not found (Debian: apt-get install nginx-light); serving the images with ` +
        'the Node server instead, which takes a share of the CPU imgjob is measured on',
    );
  }
  const scratch = await mkdtemp(join(tmpdir(), 'imgjob-bench-'));
  try {
    /** @type {import('./runs.js').Context} */
    const ctx = {
      server,
      catalog,
      scratch,
      manifests: {},
      repo,
      outDir: OUT_DIR,
      rssBy: 'gnu-time',
    };
    for (const id of selected) await writeManifest(ctx, workloads[id], workloads);
    log(`image server (${server.kind}) ${server.origin}; manifests in ${scratch}`);

    await warmUp(ctx);
    const startupMs = await measureStartup(ctx);
    log(`imgjob start-up (--version): ${startupMs.toFixed(0)} ms`);
    const startupCpu = await measureStartupCpu(ctx);
    log(
      `start-up CPU: imgjob run (empty manifest) ${startupCpu.imgjobMs.toFixed(0)} ms, node -e 0 ${startupCpu.nodeMs.toFixed(0)} ms`,
    );

    /** @type {Partial<Record<WorkloadId, Rep[]>>} */
    const reps = {};
    for (let run = 1; run <= runs; run++) {
      for (const id of selected) {
        const rep = await runWorkload(ctx, workloads[id], reps);
        (reps[id] ??= []).push(rep);
        log(
          `${id} run ${run}/${runs}: ${rep.images} images in ${seconds(rep.wallMs)} (${(rep.images / (rep.wallMs / 1000)).toFixed(0)} img/s, peak RSS ${rep.peakRssMb?.toFixed(0) ?? '?'} MB)`,
        );
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

    const figures = [startupFigure(startupCpu)];
    figures.push(
      ...selected.flatMap((id) => {
        const profile = profiles[id];
        const saveCost = id === 'W4' && profile ? saveCostOf(profile) : undefined;
        return figuresOf(workloads[id], reps[id] ?? [], { saveCost, startupCpu });
      }),
    );
    const report = {
      date: new Date().toISOString(),
      quick,
      runs,
      machine: { ...describeMachine(), loadAtStart },
      rssBy: ctx.rssBy,
      startupMs,
      startupCpu,
      server: server.kind,
      figures,
      workloads: Object.fromEntries(
        selected.map((id) => [id, { config: configOf(workloads[id]), reps: reps[id] }]),
      ),
      profiles,
    };
    await mkdir(OUT_DIR, { recursive: true });
    await writeFile(join(OUT_DIR, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    console.log(`\n${renderTable(figures)}\n`);
    console.log(
      `(${runs === 1 ? '1 run' : `median of ${runs} runs`}; report: ${join('bench', 'out', 'report.json')})`,
    );
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
 * `--only W1,W3`; W5 compares with W3, so it brings W3 along.
 *
 * @param {string | undefined} only
 * @returns {WorkloadId[]}
 */
function selectWorkloads(only) {
  if (only === undefined) return [...WORKLOAD_IDS];
  const asked = only.split(',').map((id) => id.trim().toUpperCase());
  const unknown = asked.filter((id) => !WORKLOAD_IDS.some((known) => known.toUpperCase() === id));
  if (unknown.length > 0)
    throw new UsageError(
      `Expected \`--only\` to list workloads of ${WORKLOAD_IDS.join(', ')}, got \`${unknown.join(', ')}\``,
    );
  return WORKLOAD_IDS.filter(
    (id) =>
      asked.includes(id.toUpperCase()) ||
      (id === 'W3' && asked.includes('W5')) ||
      (id === 'W3m' && asked.includes('W5M')),
  );
}

/**
 * @param {string[]} args
 */
function readFlags(args) {
  try {
    return parseArgs({
      args,
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
    }).values;
  } catch (error) {
    return new UsageError(error instanceof Error ? error.message : String(error));
  }
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
