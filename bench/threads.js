// @ts-check
/**
 * A paired comparison on the photo mix (W3m's manifest, nginx when present):
 * imgjob with `--threads 1`, imgjob with each other thread count asked for
 * (default: imgjob's default), and the compiled reference client
 * (bench/cclient.c, built here with the machine's `cc`; skipped with a line
 * when there is none), taking turns (the order reversed every other round)
 * so that a drift in the machine's load favours none. Prints each run, and
 * per round and as medians: the default's wall time ÷ one thread's, the CPU
 * per image of each, and imgjob's images/s ÷ the compiled client's.
 *
 * `--images` takes W3m's first stores up to that many images (the issue's
 * W3 figures are 2,000 photos of the mix, mean ~585 KB).
 *
 *   node bench/threads.js [--rounds 3] [--images 2000] [--threads default,2] [--no-cc]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';

import { loadCatalog } from './catalog.js';
import { hasNginx, spawnNginx } from './nginx.js';
import { spawnImageServer } from './server.js';
import { runMeasured } from './spawn.js';
import { defineWorkloads, manifestOf, urlsOf } from './workloads.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    images: { type: 'string', default: '2000' },
    threads: { type: 'string', default: 'default' },
    'no-cc': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const counts = ['1', ...values.threads.split(',')];

const catalog = loadCatalog();
const server = hasNginx() ? await spawnNginx(catalog) : await spawnImageServer();
const scratch = await mkdtemp(join(tmpdir(), 'imgjob-threads-'));
try {
  const workload = firstImages(defineWorkloads(false).W3m, Number(values.images));
  const manifest = manifestOf(workload, catalog, server.origin);
  const urls = urlsOf(manifest);
  await server.serveUrls(urls);
  const file = join(scratch, 'W3m.json');
  await writeFile(file, JSON.stringify(manifest));
  const cclient = values['no-cc'] ? undefined : buildClient();
  const paths = join(scratch, 'paths.txt');
  await writeFile(paths, urls.map((url) => new URL(url).pathname).join('\n'));
  const { hostname, port } = new URL(server.origin);
  /** @type {Record<string, readonly string[]>} */
  const commands = {};
  for (const count of counts) {
    commands[`--threads ${count}`] = [
      process.execPath,
      'bin/imgjob.js',
      'run',
      file,
      '-o',
      join(scratch, 'r.json'),
      '--force',
      '--json',
      ...workload.options,
      ...(count === 'default' ? [] : ['--threads', count]),
    ];
  }
  if (cclient) commands.cc = [cclient, hostname, port, paths, String(workload.machines)];
  const names = Object.keys(commands);
  console.log(
    `[threads] ${server.kind}; ${urls.length} images (W3m's first); load ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
  );
  // Warm the server's page cache and nginx's file cache.
  if (cclient) await runMeasured(commands.cc ?? [], { cwd: repo, scratch });
  /** @type {Record<string, { wall: number[], cpu: number[] }>} */
  const seen = {};
  for (let round = 1; round <= rounds; round++) {
    for (const name of round % 2 === 1 ? names : [...names].reverse()) {
      const run = await runMeasured(commands[name] ?? [], { cwd: repo, scratch });
      if (run.code !== 0) throw new Error(`${name} failed (${run.code}): ${run.stderr}`);
      const entry = (seen[name] ??= { wall: [], cpu: [] });
      entry.wall.push(run.wallMs);
      entry.cpu.push(run.cpuMs ?? NaN);
      console.log(
        `round ${round} ${name.padEnd(18)} ${(run.wallMs / 1000).toFixed(2)} s wall, ${((run.cpuMs ?? NaN) / 1000).toFixed(2)} s CPU, ${((urls.length * 1000) / run.wallMs).toFixed(0)} images/s`,
      );
    }
    console.log(`round ${round}: ${ratios((entry) => entry.at(-1) ?? NaN)}`);
  }
  console.log(`medians of ${rounds} rounds: ${ratios(median)}`);
  console.log(`load after: ${loadavg()[0]?.toFixed(1)}`);

  /** The figures of one round (`pick` = its last values) or over all (`pick` = median). */
  function ratios(/** @type {(list: number[]) => number} */ pick) {
    const one = seen['--threads 1'];
    const parts = [];
    for (const name of names) {
      const entry = seen[name];
      if (!entry) continue;
      const perImage = (pick(entry.cpu) * 1000) / urls.length;
      parts.push(`${name} ${perImage.toFixed(0)} µs CPU/image`);
    }
    for (const count of counts.slice(1)) {
      const entry = seen[`--threads ${count}`];
      if (entry && one) {
        parts.push(`--threads ${count} ÷ 1 wall ${(pick(entry.wall) / pick(one.wall)).toFixed(3)}`);
      }
    }
    const cc = seen.cc;
    if (cc) {
      for (const name of names.filter((n) => n !== 'cc')) {
        const entry = seen[name];
        if (entry)
          parts.push(`${name} ÷ cc images/s ${(pick(cc.wall) / pick(entry.wall)).toFixed(2)}`);
      }
    }
    return parts.join('; ');
  }
} finally {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
}

/** Builds bench/cclient.c with the machine's `cc`; undefined (and a line) when it cannot. */
function buildClient() {
  const out = join(scratch, 'cclient');
  const source = join(repo, 'bench', 'cclient.c');
  const built = spawnSync('cc', ['-O2', '-o', out, source], { encoding: 'utf8' });
  if (built.error || built.status !== 0) {
    console.log(
      `[threads] no compiled client: \`cc\` ${built.error ? 'is not installed' : `failed: ${built.stderr.trim()}`}`,
    );
    return undefined;
  }
  return out;
}

/**
 * The workload's first stores, the last one cut, to `images` images in all.
 * @param {import('./workloads.js').Workload} workload
 * @param {number} images
 * @returns {import('./workloads.js').Workload}
 */
function firstImages(workload, images) {
  /** @type {number[]} */
  const storeSizes = [];
  let left = images;
  for (const size of workload.storeSizes) {
    if (left <= 0) break;
    storeSizes.push(Math.min(size, left));
    left -= size;
  }
  return { ...workload, storeSizes };
}

/** @param {number[]} list */
function median(list) {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
