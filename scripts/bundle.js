// @ts-check
/**
 * The command line, bundled: after `tsc`, esbuild writes `dist/cli/main.js`
 * again as one module (its dependencies inside) plus chunks at `dist/` for
 * what it loads on use (`run`, `serve`, the download pool…). Node 20 has no
 * module compile cache, so each module file costs start-up time; loading a
 * few files instead of ~60 takes `imgjob run` from ~2.1× to ~1.8× the CPU of
 * `node -e 0` (BENCHMARKS.md). The library entries (`imgjob`, `imgjob/serve`)
 * stay tsc's output.
 *
 * What a command does not use stays out of what it loads: a command's heavy
 * modules are imported on use (`await import()` in its action), which
 * esbuild turns into chunks of their own. test/cli-startup.test.ts names the
 * packages each light command must not load.
 *
 * One more entry sits at `dist/` beside the chunks, for the code that names
 * a file by URL at run time: `worker.js`, the download thread the pool starts
 * as `./worker.js` (src/download/threads/worker-file.ts).
 *
 *   node scripts/bundle.js
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

// The chunks of an earlier build (their names carry a content hash).
for (const name of readdirSync('dist')) {
  if (/-[A-Z0-9]{8}\.js(\.map)?$/.test(name)) rmSync(join('dist', name));
}

/** `'undici'` is the few classes the downloads use (scripts/undici-parts.js), not its whole index. */
/** @type {import('esbuild').Plugin} */
const undiciParts = {
  name: 'undici-parts',
  setup(build) {
    const path = fileURLToPath(new URL('undici-parts.js', import.meta.url));
    build.onResolve({ filter: /^undici$/ }, () => ({ path }));
  },
};

await build({
  entryPoints: {
    'cli/main': 'src/cli/main.ts',
    worker: 'src/download/threads/worker.ts',
  },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Maps give a bug report's stack (`--debug`, with --enable-source-maps)
  // its places in src/; the sources themselves, most of them the bundled
  // packages, stay out: 7.2 MB of the package's 12 MB unpacked, 2.7 → 1.6 MB packed.
  sourcemap: true,
  sourcesContent: false,
  // Native addons stay where npm put them: SQLite (`serve` only) and
  // msgpackr's optional one, which bullmq's msgpackr finds through require().
  // BullMQ and ioredis are bundled: loaded from node_modules, their ~300
  // CommonJS files took ~300 ms of CPU at each `imgjob worker` start.
  external: ['better-sqlite3', 'msgpackr-extract'],
  // Bundled CommonJS packages (commander, cli-table3, ioredis…) call
  // require() and some read __dirname (ioredis's error stacks): here they are
  // the chunk's own.
  banner: {
    js: "import { createRequire as __imgjobRequire } from 'node:module'; const require = __imgjobRequire(import.meta.url); const __filename = import.meta.filename; const __dirname = import.meta.dirname;",
  },
  plugins: [undiciParts],
  logLevel: 'warning',
});
