// @ts-check
/**
 * A paired comparison of download thread counts on the photo mix (W3m's
 * manifest, nginx when present): imgjob with `--threads 1`, then with each
 * other count asked for (default: imgjob's default), taking turns, so a
 * drift in the machine's load does not favour one. Prints each run and, per
 * round, the default's wall time ÷ one thread's.
 *
 *   node bench/threads.js [--rounds 3] [--threads default,2]
 */
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
    threads: { type: 'string', default: 'default' },
  },
});
const rounds = Number(values.rounds);
const counts = ['1', ...values.threads.split(',')];

const catalog = loadCatalog();
const server = hasNginx() ? await spawnNginx(catalog) : await spawnImageServer();
const scratch = await mkdtemp(join(tmpdir(), 'imgjob-threads-'));
try {
  const workload = defineWorkloads(false).W3m;
  const manifest = manifestOf(workload, catalog, server.origin);
  await server.serveUrls(urlsOf(manifest));
  const file = join(scratch, 'W3m.json');
  await writeFile(file, JSON.stringify(manifest));
  console.error(
    `[threads] ${server.kind}; ${urlsOf(manifest).length} images; load ${loadavg()[0]?.toFixed(1)}`,
  );
  for (let round = 1; round <= rounds; round++) {
    /** @type {Record<string, number>} */
    const wall = {};
    // Odd rounds start with one thread, even rounds end with it.
    const order = round % 2 === 1 ? counts : [...counts].reverse();
    for (const count of order) {
      const threads = count === 'default' ? [] : ['--threads', count];
      const run = await runMeasured(
        [
          process.execPath,
          'bin/imgjob.js',
          'run',
          file,
          '-o',
          join(scratch, 'r.json'),
          '--force',
          '--json',
          ...workload.options,
          ...threads,
        ],
        { cwd: repo, scratch },
      );
      if (run.code !== 0) throw new Error(`imgjob failed (${run.code}): ${run.stderr}`);
      wall[count] = run.wallMs;
      console.log(
        `round ${round} --threads ${count}: ${(run.wallMs / 1000).toFixed(2)} s wall, ${((run.cpuMs ?? NaN) / 1000).toFixed(2)} s CPU`,
      );
    }
    for (const count of counts.slice(1)) {
      console.log(
        `round ${round}: --threads ${count} ÷ --threads 1 = ${((wall[count] ?? NaN) / (wall['1'] ?? NaN)).toFixed(3)}`,
      );
    }
  }
} finally {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
}
