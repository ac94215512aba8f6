#!/usr/bin/env node
// `npm test`: every check and every test, arranged for a 2-core machine.
// The type check with eslint (one process over one TypeScript program:
// scripts/check.js) and prettier start at once, beside the build; the tests
// start when the build is done (they spawn the built CLI). Most test
// files wait on a spawned imgjob, Redis or a browser, and the checks use the
// cores the tests leave idle. The files that hold an issue's own time bound
// (vitest project `alone`) run last, in the same vitest, once everything
// else has ended, so nothing of npm test competes with what they measure:
// vitest starts them after the other files (a later group), and their setup
// file waits for the checks too, on a local socket this script holds open
// until the checks end (test/helpers/after-checks.ts). The checks' output
// is held and printed after the tests', so it does not cut through vitest's.
// The build is make-style: `tsc -b` skips what its build info
// (dist/.tsbuildinfo) says is up to date with src/, so right after `npm ci`
// (whose `prepare` built dist/) it only checks file stamps, and a changed
// source file is compiled again before any test runs. The checks keep no
// cache: a fresh clone checks exactly what a warm one does.
// Exit: 0 when all passed, else 1.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** @typedef {'build' | 'typecheck+eslint' | 'prettier' | 'vitest'} Step */
/** @typedef {{ name: Step, code: number, output: string, ms: number }} StepResult */

/** V8 flags for the checks (see `steps`). */
const CHECK_FLAGS = [
  '--max-semi-space-size=32',
  '--single-threaded-gc',
  '--initial-old-space-size=2048',
];

/** @type {Record<Step, [string, string[]]>} */
const steps = {
  build: ['npm', ['run', 'build']],
  // The checks run beside the tests on 2 cores, so they spend their CPU on
  // nothing but checking: a larger young generation (the TypeScript
  // program's short-lived objects are collected less often), no parallel
  // or concurrent GC threads, an old generation that starts at 2 GB (the
  // program peaks at ~0.8 GB: it is never marked, instead of five times
  // while it grows), and prettier started by node rather than npx (~0.6 s).
  // check.js: 64.2 vs 70.2 s and 65.6 vs 74.9 s of CPU (paired, under load).
  'typecheck+eslint': ['node', [...CHECK_FLAGS, 'scripts/check.js']],
  prettier: ['node', [...CHECK_FLAGS, 'node_modules/prettier/bin/prettier.cjs', '--check', '.']],
  // Started by node, not npx: npx's own start costs ~0.6 s of CPU (0.7 vs 0.15 s for `--version`).
  vitest: ['node', ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)]],
};

const checksRunning = await holdWhileChecking();
const checks = Promise.all([run('typecheck+eslint'), run('prettier')]).finally(checksRunning.end);
const build = await run('build');
const tests =
  build.code === 0
    ? [await run('vitest', true, { IMGJOB_TEST_CHECKS_SOCKET: checksRunning.path })]
    : [];
const checked = await checks;
const results = [build, ...checked, ...tests];
for (const result of results) {
  if (result.output !== '') process.stdout.write(`\n── ${result.name}\n${result.output}`);
}
const failed = results.filter((result) => result.code !== 0).map((result) => result.name);
const seconds = (/** @type {StepResult} */ result) =>
  `${result.name} ${(result.ms / 1000).toFixed(1)} s`;
process.stdout.write(`\n${results.map(seconds).join(', ')}\n`);
if (build.code !== 0) process.stdout.write('the build failed: the tests did not run\n');
if (failed.length > 0) process.stdout.write(`failed: ${failed.join(', ')}\n`);
process.exitCode = failed.length > 0 ? 1 : 0;

/**
 * A local socket, listening until `end()`: the time-bound test files wait
 * for it to close before they start (test/helpers/after-checks.ts).
 * @returns {Promise<{ path: string, end: () => void }>}
 */
async function holdWhileChecking() {
  const name = `imgjob-test-checks-${process.pid}`;
  const path =
    process.platform === 'win32' ? `\\\\.\\pipe\\${name}` : join(tmpdir(), `${name}.sock`);
  rmSync(path, { force: true });
  /** @type {Set<import('node:net').Socket>} */
  const waiting = new Set();
  const server = createServer((socket) => {
    waiting.add(socket);
    socket.on('close', () => waiting.delete(socket));
    socket.on('error', () => undefined);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      resolve(undefined);
    });
  });
  return {
    path,
    end() {
      server.close();
      for (const socket of waiting) socket.destroy();
      rmSync(path, { force: true });
    },
  };
}

/**
 * Runs one step; its output is passed through when `live`, else kept for later.
 * @param {Step} name
 * @param {boolean} [live]
 * @param {Record<string, string>} [env] added to the step's environment
 * @returns {Promise<StepResult>}
 */
function run(name, live = false, env = {}) {
  const [command, args] = steps[name];
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: live ? 'inherit' : ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let output = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk) => (output += chunk));
    child.on('error', (error) => {
      output += `${error.message}\n`;
    });
    child.on('close', (code) => {
      resolve({ name, code: code ?? 1, output, ms: performance.now() - started });
    });
  });
}
