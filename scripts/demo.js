// @ts-check
/**
 * `npm run demo`: one imgjob run, start to finish, against the fixture images
 * served from a local port. Store RP00001 has a missing image (HTTP 404) on
 * purpose, so the job ends `failed` with that store alone; this script exits
 * 0 when imgjob does exactly that.
 */
import { spawn } from 'node:child_process';
import console from 'node:console';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';
import { startFixtureServer } from './fixture-server.js';

/**
 * @typedef {{ store_id: string, image_url: string[], visit_time?: string }} Visit
 * @typedef {{ count: number, visits: Visit[] }} Manifest
 * @typedef {{ store_id: string, status: string, images: { status: string }[] }} StoreResult
 * @typedef {{ status: string, error?: { store_id: string }[], stores: StoreResult[] }} Results
 */

const repo = fileURLToPath(new URL('..', import.meta.url));
/** The origin the demo manifest is written with; replaced by the server's real one. */
const TEMPLATE_ORIGIN = 'http://127.0.0.1:8765';
const FAILING_STORE = 'RP00001';
/** RP00001's images: one served, the 404, then two that must never be requested. */
const FAILING_STORE_IMAGES = ['done', 'failed', 'skipped', 'skipped'];

/** @type {import('node:child_process').ChildProcess | undefined} */
let child;
/** @type {NodeJS.Signals | undefined} */
let interrupted;
/** @type {import('./fixture-server.js').FixtureServer | undefined} */
let server;

for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.on(signal, () => {
    onSignal(signal);
  });
}

process.exitCode = await main();

/** @returns {Promise<number>} the demo's exit code */
async function main() {
  if (
    !existsSync(join(repo, 'dist', 'cli', 'main.js')) ||
    !existsSync(join(repo, 'dist', 'web', 'app.js'))
  ) {
    console.error('imgjob is not built yet: run `npm run build` (or `npm ci`) first.');
    return 2;
  }
  server = await startFixtureServer(join(repo, 'fixtures'));
  try {
    const dir = await mkdtemp(join(tmpdir(), 'imgjob-demo-'));
    const manifestFile = join(dir, 'demo.json');
    const resultsFile = join(dir, 'demo.results.json');
    const manifest = await demoManifest(server.origin);
    await writeFile(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);

    const stores = new Set(manifest.visits.map((visit) => visit.store_id)).size;
    const images = manifest.visits.reduce((sum, visit) => sum + visit.image_url.length, 0);
    console.log(
      `imgjob demo: ${manifest.visits.length} visits, ${stores} stores, ${images} images served by ${server.origin}.`,
    );
    console.log(
      `Store ${FAILING_STORE} has a missing image (HTTP 404) on purpose: the job should fail with that store alone.\n`,
    );

    const runCode = await imgjob([
      'run',
      manifestFile,
      '--out',
      resultsFile,
      '--store-master',
      join(repo, 'fixtures', 'store-master.csv'),
      '--gpu-delay',
      '50-150',
      '--seed',
      '7',
      '--force',
    ]);
    if (interrupted) {
      console.log(
        `\nInterrupted. What was done is in ${resultsFile} (imgjob run --resume goes on).`,
      );
      return runCode;
    }
    console.log();
    await imgjob(['status', resultsFile]);
    if (interrupted) return signalExitCode(interrupted);

    console.log(`\nResults file: ${resultsFile}`);
    const verdict = await checkResults(resultsFile, runCode);
    console.log(verdict.message);

    // The report a CI job would upload: one self-contained page, opened from file://.
    const reportFile = join(dir, 'demo.report.html');
    console.log();
    const reportCode = await imgjob([
      'report',
      resultsFile,
      '--html',
      reportFile,
      '--junit',
      join(dir, 'demo.junit.xml'),
    ]);
    if (interrupted) return signalExitCode(interrupted);
    // `report` exits 0 once it wrote what was asked, even for a failed job (`--strict` would give 1).
    if (reportCode !== 0 || !existsSync(reportFile)) {
      console.log(`Unexpected: imgjob report exited with ${reportCode}.`);
      return reportCode || 1;
    }
    console.log(
      `\nHTML report: ${reportFile}\nOpen it in a browser: ${pathToFileURL(reportFile).href}`,
    );
    return verdict.ok ? 0 : runCode || 1;
  } finally {
    await server.close();
  }
}

/**
 * The demo manifest with its URLs moved to `origin`.
 *
 * @param {string} origin
 * @returns {Promise<Manifest>}
 */
async function demoManifest(origin) {
  const text = await readFile(join(repo, 'fixtures', 'manifests', 'demo.json'), 'utf8');
  const manifest = /** @type {Manifest} */ (JSON.parse(text));
  for (const visit of manifest.visits) {
    visit.image_url = visit.image_url.map((url) =>
      url.startsWith(`${TEMPLATE_ORIGIN}/`) ? origin + url.slice(TEMPLATE_ORIGIN.length) : url,
    );
  }
  return manifest;
}

/**
 * Did imgjob do what the demo expects: exit 1, RP00001 failed at its 404
 * with the rest skipped, every other store completed?
 *
 * @param {string} resultsFile
 * @param {number} runCode
 * @returns {Promise<{ ok: boolean, message: string }>}
 */
async function checkResults(resultsFile, runCode) {
  /** @type {Results} */
  let results;
  try {
    results = /** @type {Results} */ (JSON.parse(await readFile(resultsFile, 'utf8')));
  } catch (error) {
    return { ok: false, message: `Unexpected: no readable results file (${String(error)}).` };
  }
  const failed = (results.error ?? []).map((entry) => entry.store_id);
  const storesAsExpected = results.stores.every((store) =>
    store.store_id === FAILING_STORE
      ? store.status === 'failed' &&
        store.images.map((image) => image.status).join() === FAILING_STORE_IMAGES.join()
      : store.status === 'completed',
  );
  const ok =
    runCode === 1 &&
    results.status === 'failed' &&
    failed.join() === FAILING_STORE &&
    storesAsExpected;
  return ok
    ? {
        ok,
        message: `As expected: exit code 1, the job failed only because of ${FAILING_STORE}'s missing image (its later images skipped); every other store completed.`,
      }
    : {
        ok,
        message: `Unexpected: imgjob exited with ${runCode}, job ${results.status}, failed stores [${failed.join(', ')}]; expected exit 1 with only ${FAILING_STORE} failed.`,
      };
}

/**
 * Runs `node bin/imgjob.js ...args` with the terminal attached.
 *
 * @param {string[]} args
 * @returns {Promise<number>} its exit code (128 + n when killed by signal n)
 */
function imgjob(args) {
  const shown = args.map((arg) => (arg.startsWith(repo) ? relative(process.cwd(), arg) : arg));
  console.log(`$ imgjob ${shown.join(' ')}`);
  return new Promise((done, fail) => {
    child = spawn(process.execPath, [join(repo, 'bin', 'imgjob.js'), ...args], {
      stdio: 'inherit',
    });
    child.once('error', fail);
    child.once('exit', (code, signal) => {
      child = undefined;
      done(code ?? (signal ? signalExitCode(signal) : 1));
    });
  });
}

/**
 * Ctrl-C or SIGTERM: let imgjob save and stop, then close the server. A
 * Ctrl-C in the terminal reaches imgjob by itself; a signal sent to the demo
 * alone is passed on if imgjob is still running a second later.
 *
 * @param {NodeJS.Signals} signal
 */
function onSignal(signal) {
  interrupted ??= signal;
  const running = child;
  if (running) {
    setTimeout(() => {
      if (running.exitCode === null && running.signalCode === null) running.kill(signal);
    }, 1000).unref();
    return;
  }
  const exit = () => process.exit(signalExitCode(signal));
  if (server) server.close().then(exit, exit);
  else exit();
}

/** @param {NodeJS.Signals} signal */
function signalExitCode(signal) {
  return 128 + constants.signals[signal];
}
