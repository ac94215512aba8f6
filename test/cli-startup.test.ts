/**
 * Each command loads only what it uses: the ~370 CLI processes the tests
 * spawn, and every user's `imgjob status`, pay for each package loaded at
 * start-up. A static import of a heavy package in a module the entry loads
 * (main.ts, a command's definition) undoes that without a word; this test
 * says which command started loading which package.
 *
 * What a process loaded: a module preloaded with `--import` opens an
 * inspector session on its own process, which hears of every script V8
 * compiles (each ES module file), and writes them at exit with the require
 * cache (the CommonJS files); the bundled chunks of `dist/` name the
 * packages inside them in their source maps. (An ES module loader hook
 * would see the same files, but runs in a thread of its own that cost each
 * process about a third more CPU.)
 *
 * @module-tag e2e
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.js';
import { runJobHere } from './helpers/main.js';

/** Packages with a real start-up cost, and what needs them. */
const HEAVY = [
  'bullmq', // --queue
  'ioredis', // --queue
  'better-sqlite3', // serve
  'prom-client', // --metrics-port
  'undici', // the first download
  'hyparquet-writer', // report --parquet
  'zod', // a manifest that is wrong
  'ora', // run's spinner on a terminal
  'cli-table3', // a store table
  'csv-parse', // a CSV manifest or a store master
  'p-queue', // run
] as const;

type Heavy = (typeof HEAVY)[number];

/** Preloaded: collects the ES module files V8 compiles, and at exit appends them and the require cache to IMGJOB_TEST_LOADED. */
const PRELOAD = `
import { appendFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
const log = process.env.IMGJOB_TEST_LOADED;
const modules = [];
const session = new Session();
session.connect();
session.on('Debugger.scriptParsed', ({ params }) => {
  if (params.url.startsWith('file:')) modules.push(fileURLToPath(params.url));
});
session.post('Debugger.enable');
process.on('exit', () => {
  const files = [...modules, ...Object.keys(createRequire(import.meta.url).cache)];
  appendFileSync(log, files.map((file) => file + '\\n').join(''));
});
`;

let dir: string;
let manifest: string;
let results: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'imgjob-startup-'));
  writeFileSync(join(dir, 'preload.mjs'), PRELOAD);
  manifest = join(dir, 'empty.json');
  writeFileSync(manifest, '{"count":0,"visits":[]}');
  // A results file for status and report; what this process loads is not measured.
  results = join(dir, 'empty.results.json');
  const run = await runJobHere(['run', manifest, '-o', results]);
  expect(run.code, run.stderr).toBe(0);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let runs = 0;

/** The packages `imgjob <args>` loaded, by name; fails on a non-zero exit. */
async function packagesLoaded(args: readonly string[]): Promise<Set<string>> {
  const log = join(dir, `loaded-${++runs}.txt`);
  const { code, stderr } = await runCli(args, {
    env: {
      NODE_OPTIONS: `--import=${join(dir, 'preload.mjs')}`,
      IMGJOB_TEST_LOADED: log,
    },
  });
  expect(code, stderr).toBe(0);
  const packages = new Set<string>();
  const add = (path: string): void => {
    const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];
    if (name) packages.add(name);
  };
  for (const file of new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))) {
    add(file);
    // A chunk of the bundled CLI: its source map lists the files inside.
    if (existsSync(`${file}.map`)) {
      const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] };
      for (const source of map.sources) add(source);
    }
  }
  return packages;
}

/** What `args` loaded of HEAVY, but for `allowed`; commander proves the log saw the chunks. */
async function expectLight(args: readonly string[], allowed: readonly Heavy[] = []): Promise<void> {
  const packages = await packagesLoaded(args);
  expect(packages.has('commander'), [...packages].join(' ')).toBe(true);
  const loaded = HEAVY.filter((name) => packages.has(name) && !allowed.includes(name));
  expect(loaded, `imgjob ${args.join(' ')} loaded`).toEqual([]);
}

describe('start-up: each command loads what it uses', () => {
  it('run of an empty manifest: no queue, server, metrics or download packages', async () => {
    await expectLight(
      ['run', manifest, '-o', join(dir, 'again.results.json')],
      [
        'p-queue',
        'cli-table3',
        // The manifest reader's CSV form comes with it.
        'csv-parse',
      ],
    );
  });

  it('--version and -h load none of them', async () => {
    await expectLight(['--version']);
    await expectLight(['-h']);
  });

  it('status, with and without --json: the table only', async () => {
    await expectLight(['status', results], ['cli-table3']);
    await expectLight(['status', results, '--json'], ['cli-table3']);
  });

  it('validate and report --csv: neither the download nor the Parquet writer', async () => {
    await expectLight(['validate', manifest], ['csv-parse']);
    await expectLight(['report', results, '--csv', join(dir, 'report.csv')]);
  });
});
