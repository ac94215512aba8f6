/**
 * Crash, stop and resume, end to end (the durability rules: killed at any instant, --resume ends with one result per image): the BUILT CLI
 * runs a job whose every image sits behind its own gate of the fault server,
 * is killed (SIGKILL, SIGINT, SIGTERM) at a chosen point, and is resumed with
 * `--resume`. The verdict comes from the results file (snapshot + journal, as
 * `loadResults` reads it) and the server's request log — never from timing:
 * a kill point is reached when the server saw the held requests and the file
 * shows the expected results, and the job cannot move on from there because
 * every image it could start next is held at a closed gate.
 *
 * @module-tag e2e
 */
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createGpuDelayPicker } from '../src/engine/gpu-delay.js';
import { loadResults } from '../src/results/reader.js';
import { journalPathOf } from '../src/results/paths.js';
import type { ImageStatus, ResultsDocument } from '../src/types.js';
import { spawnCli, stopAll, waitForResults, type CliResult } from './helpers/cli.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const SEED = 7;
/** A range, so `gpu_ms` differs per image and shows that the seed is honoured. */
const GPU_DELAY = { min: 0, max: 20 };
/** `--retries 0`: a stray retry would show up as a second request, not hide. */
const ARGS = `--gpu-delay ${GPU_DELAY.min}-${GPU_DELAY.max} --seed ${SEED} --retries 0`.split(' ');

// A run that is not killed (the reference, every resume, every refusal) runs
// main() in this process; the runs that are killed are processes.

/**
 * The job: 4 stores, 10 images (S1 spans two visits). `c1` is an HTML page,
 * so S3 fails there and `c2` is skipped; the job ends `failed` (exit 1).
 */
const VISITS = [
  { store: 'S1', images: { a0: 'image.png', a1: 'image.gif' } },
  { store: 'S2', images: { b0: 'baseline.jpg', b1: 'image.webp', b2: 'image.bmp' } },
  { store: 'S3', images: { c0: 'image.tiff', c1: 'not-an-image.html', c2: 'image.png' } },
  { store: 'S1', images: { a2: 'progressive.jpg' } },
  { store: 'S4', images: { d0: 'image.svg' } },
] as const;
const ALL_KEYS = VISITS.flatMap((visit) => Object.keys(visit.images)).sort();

type Job = {
  /** Makes this job's gates and URLs its own: `/gate/<prefix>-<key>/<file>`. */
  readonly prefix: string;
  readonly dir: string;
  readonly manifest: string;
  /** The default results file, beside the manifest. */
  readonly out: string;
};

type Signal = 'SIGKILL' | 'SIGINT' | 'SIGTERM';

let server: FaultServer;
let reference: { readonly job: Job; readonly document: ResultsDocument; readonly stores: unknown };
const folders: string[] = [];

beforeAll(async () => {
  server = await startFaultServer();
  // The uninterrupted run every resumed run must equal.
  const job = newJob('ref');
  openGates(job);
  const result = await runJobHere(['run', job.manifest, ...ARGS]);
  expect(result.code, result.stderr).toBe(1);
  const document = await loadResults(job.out);
  reference = { job, document, stores: comparable(document, job.prefix) };
});

afterAll(async () => {
  // Children a failed test left held at a gate (not in afterEach: tests of a
  // concurrent group would kill each other's).
  await stopAll();
  await server.close();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('the uninterrupted reference run', () => {
  it('measures every image, gives each its seeded GPU time, fails S3 at the HTML page', () => {
    const { document } = reference;
    const expected = JSON.parse(
      readFileSync(new URL('../fixtures/images/expected.json', import.meta.url), 'utf8'),
    ) as Record<string, { width: number; height: number }>;
    const gpuDelay = createGpuDelayPicker(GPU_DELAY, SEED);
    expect(document.status).toBe('failed');
    expect(document.error?.map((entry) => entry.store_id)).toEqual(['S3']);
    expect(document.stores.map((store) => [store.store_id, store.status])).toEqual([
      ['S1', 'completed'],
      ['S2', 'completed'],
      ['S3', 'failed'],
      ['S4', 'completed'],
    ]);
    const gpuTimes: number[] = [];
    for (const store of document.stores) {
      store.images.forEach((image, index) => {
        const file = new URL(image.url).pathname.split('/')[3] ?? '';
        if (image.status !== 'done') return;
        expect(image).toMatchObject({
          width: expected[file]?.width,
          height: expected[file]?.height,
          perimeter: 2 * ((expected[file]?.width ?? 0) + (expected[file]?.height ?? 0)),
          gpu_ms: gpuDelay(store.store_id, index),
        });
        gpuTimes.push(image.gpu_ms);
      });
    }
    expect(gpuTimes).toHaveLength(8);
    expect(new Set(gpuTimes).size).toBeGreaterThan(1);
    expect(statusOf(document, 'c1')).toBe('failed');
    expect(statusOf(document, 'c2')).toBe('skipped');
    expect(server.requestsTo('/gate/ref-c2/')).toEqual([]);
  });
});

type KillPoint = {
  readonly name: string;
  readonly id: string;
  /** Gates opened before the run: everything else is held. */
  readonly open: readonly string[];
  /** Images held at their gate at the kill: the only ones in flight. */
  readonly held: readonly string[];
  /** Images with a result at the kill (a skipped one is never requested). */
  readonly recorded: readonly string[];
};

const KILL_POINTS: readonly KillPoint[] = [
  {
    name: 'before any image completes',
    id: 'k0',
    open: [],
    held: ['a0', 'b0', 'c0', 'd0'],
    recorded: [],
  },
  {
    name: 'mid-job (S1 and S4 done, S2 at its 2nd image, S3 at its 1st)',
    id: 'k1',
    open: ['a0', 'a1', 'a2', 'b0', 'd0'],
    held: ['b1', 'c0'],
    recorded: ['a0', 'a1', 'a2', 'b0', 'd0'],
  },
  {
    name: 'during the last store (S2 held at its last image)',
    id: 'k2',
    open: ALL_KEYS.filter((key) => key !== 'b2'),
    held: ['b2'],
    recorded: ALL_KEYS.filter((key) => key !== 'b2'),
  },
];

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

// Each case has its own gates, folder and URL prefix: they run side by side.
describe.concurrent.each(KILL_POINTS)('killed $name', (point) => {
  it.each<Signal>(['SIGKILL', 'SIGINT', 'SIGTERM'])(
    'by %s, then resumed: one result per image, nothing recorded is fetched again, same results and job_id',
    async (signal) => {
      const job = newJob(`${point.id}-${signal.toLowerCase()}`);
      openGates(job, point.open);
      const run = spawnCli(['run', job.manifest, ...ARGS]);
      await heldAt(job, point.held);
      const atKill = await waitForResults(
        job.out,
        (document) => point.recorded.every((key) => statusOf(document, key) !== 'pending'),
        { run },
      );
      const stopped = await run.kill(signal);

      // What the file holds after the kill is what was recorded before it.
      const recorded = await loadResults(job.out);
      expect(recordedKeys(recorded)).toEqual([...point.recorded].sort());
      expect(recorded.job_id).toBe(atKill.job_id);
      const before = requestedKeys(job);
      expect(before, 'no image was requested twice before the kill').toEqual(unique(before));
      expect(before.filter((key) => !point.recorded.includes(key))).toEqual([...point.held].sort());

      let resumeArgs = ['run', job.manifest, ...ARGS, '--resume'];
      if (signal === 'SIGKILL') {
        expect(stopped).toMatchObject({ code: null, signal: 'SIGKILL' });
        // A kill -9 can land in the middle of a journal line.
        tearJournal(job.out);
        expect(comparableState(await loadResults(job.out))).toEqual(comparableState(recorded));
      } else {
        resumeArgs = expectGracefulStop(stopped, signal, job);
        expect(recorded).toMatchObject({ status: 'ongoing', interrupted: true });
      }
      if (point.id === 'k1') await expectStatusNotRunning(job.out, recorded.job_id);

      const mark = server.requests.length;
      openGates(job);
      const resumed = await runJobHere(resumeArgs);
      expect(resumed.code, resumed.stderr).toBe(1);
      const final = await expectFinished(job);
      expect(final.job_id).toBe(atKill.job_id);
      expect(comparable(final, job.prefix)).toEqual(reference.stores);

      const after = requestedKeys(job, mark);
      expect(after, 'no image was requested twice by the resumed run').toEqual(unique(after));
      const needed = ALL_KEYS.filter((key) => statusOf(final, key) !== 'skipped');
      // Exactly the images without a result were fetched, the held ones again.
      expect(after).toEqual(needed.filter((key) => !point.recorded.includes(key)));
      expect(after.filter((key) => before.includes(key))).toEqual([...point.held].sort());
    },
  );
});

describe('a finished job', () => {
  it('resumed right after completion: nothing is fetched, same results, exit 1 as its status', async () => {
    const { job } = reference;
    const mark = server.requests.length;
    const resumed = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(requestedKeys(job, mark)).toEqual([]);
    const final = await expectFinished(job);
    expect(final.job_id).toBe(reference.document.job_id);
    expect(final.stores).toEqual(reference.document.stores);
  });
});

describe('crash windows', () => {
  it('resumes twice after a torn journal line without fetching what the second run recorded', async () => {
    const job = newJob('twice');
    openGates(job, ['a0', 'b0']);
    const first = spawnCli(['run', job.manifest, ...ARGS]);
    await heldAt(job, ['a1', 'b1', 'c0', 'd0']);
    await waitForResults(job.out, (document) => recordedKeys(document).length === 2, {
      run: first,
    });
    await first.kill('SIGKILL');
    tearJournal(job.out);
    const { job_id: jobId } = await loadResults(job.out);

    // The second run records a1 and all of S3, then is killed too.
    openGates(job, ['a1', 'c0', 'c1']);
    const since = server.requests.length;
    const second = spawnCli(['run', job.manifest, ...ARGS, '--resume']);
    await heldAt(job, ['a2', 'b1', 'd0'], since);
    const atKill = await waitForResults(
      job.out,
      (document) => ['a1', 'c0', 'c1', 'c2'].every((key) => statusOf(document, key) !== 'pending'),
      { run: second },
    );
    await second.kill('SIGKILL');
    expect(recordedKeys(await loadResults(job.out))).toEqual(recordedKeys(atKill));

    const mark = server.requests.length;
    openGates(job);
    const third = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(third.code, third.stderr).toBe(1);
    const final = await expectFinished(job);
    expect(final.job_id).toBe(jobId);
    expect(comparable(final, job.prefix)).toEqual(reference.stores);
    expect(requestedKeys(job, mark)).toEqual(['a2', 'b1', 'b2', 'd0']);
  });

  it('a store whose failure was journaled but not its own status (kill between two lines) still ends failed', async () => {
    const job = newJob('torn-store');
    openGates(job, ['a0', 'c0', 'c1']);
    const run = spawnCli(['run', job.manifest, ...ARGS]);
    await heldAt(job, ['a1', 'b0', 'd0']);
    const killed = await waitForResults(
      job.out,
      (document) => document.stores[2]?.status === 'failed',
      {
        run,
      },
    );
    await run.kill('SIGKILL');
    // The file as a kill between "c2 skipped" and "S3 failed" leaves it.
    const { error: _error, ...document } = killed;
    const stores = document.stores.map((store) => {
      if (store.store_id !== 'S3') return store;
      const { error: _storeError, ...rest } = store;
      return { ...rest, status: 'ongoing' };
    });
    writeFileSync(job.out, JSON.stringify({ ...document, status: 'ongoing', stores }));
    rmSync(journalPathOf(job.out), { force: true });

    const mark = server.requests.length;
    openGates(job);
    const resumed = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(1);
    const final = await expectFinished(job);
    expect(comparable(final, job.prefix)).toEqual(reference.stores);
    // S3 decides its failed image again (c0 stays done, c2 is still never asked for).
    expect(requestedKeys(job, mark)).toEqual(['a1', 'a2', 'b0', 'b1', 'b2', 'c1', 'd0']);
  });

  it('--force over the file of a killed job starts clean: the old journal is not replayed', async () => {
    const old = newJob('forced-old');
    openGates(old, ['a0', 'b0', 'd0']);
    const first = spawnCli(['run', old.manifest, ...ARGS]);
    await heldAt(old, ['a1', 'b1', 'c0']);
    await waitForResults(old.out, (document) => recordedKeys(document).length === 3, {
      run: first,
    });
    await first.kill('SIGKILL');

    // A different manifest written to the same results file, held at once.
    const job = newJob('forced-new');
    const second = spawnCli(['run', job.manifest, '-o', old.out, '--force', ...ARGS]);
    await heldAt(job, ['a0', 'b0', 'c0', 'd0']);
    const fresh = await loadResults(old.out);
    expect(fresh.manifest_source).toBe(job.manifest);
    expect(recordedKeys(fresh)).toEqual([]);
    await second.kill('SIGKILL');

    openGates(job);
    const resumed = await runJobHere(['run', job.manifest, '-o', old.out, '--resume', ...ARGS]);
    expect(resumed.code, resumed.stderr).toBe(1);
    const final = await loadResults(old.out);
    expect(final.job_id).toBe(fresh.job_id);
    expect(comparable(final, job.prefix)).toEqual(reference.stores);
  });
});

describe('signals', () => {
  it('a second SIGINT quits at once, still with 130, and leaves the results file whole', async () => {
    // The one phase where a graceful stop waits on the outside world: reading
    // a manifest from a standard input that never ends.
    const job = newJob('twice-sigint');
    const out = join(job.dir, 'kept.results.json');
    copyFileSync(reference.job.out, out);
    const before = readFileSync(out);
    // Whitespace, more than a pipe holds: once it is taken, imgjob is reading
    // its manifest, so its signal handlers are in place.
    const run = spawnCli(['run', '-', '-o', out, '--resume', ...ARGS], {
      stdin: ' '.repeat(1024 * 1024),
      holdStdin: true,
    });
    await run.stdinTaken();
    run.child.kill('SIGINT');
    await run.waitForOutput('SIGINT: stopping');
    expect(run.done, 'the first SIGINT waits for the manifest').toBe(false);
    const result = await run.kill('SIGINT');
    expect(result).toMatchObject({ code: 130, signal: null });
    expect(result.stderr).not.toMatch(/results saved/);
    expect(readFileSync(out)).toEqual(before);
    await expect(loadResults(out)).resolves.toMatchObject({ job_id: reference.document.job_id });
  });
});

describe('imgjob status while a job runs', () => {
  it('exits 3 with ongoing and running; --json is the status document; the file always parses', async () => {
    const job = newJob('live');
    const run = spawnCli(['run', job.manifest, ...ARGS]);
    await heldAt(job, ['a0', 'b0', 'c0', 'd0']);
    const reads = readWhileRunning(job.out, () => run.done);

    const { job_id: jobId } = await loadResults(job.out);
    const [text, json] = await Promise.all([
      runMain(['status', job.out]),
      runMain(['status', job.out, '--json']),
    ]);
    expect(text.code, text.stderr).toBe(3);
    expect(text.stdout).toMatch(/\bongoing\b/);
    expect(text.stdout).toContain(`running (pid ${run.pid})`);
    expect(text.stdout).not.toMatch(/not running/);
    expect(json.code, json.stderr).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'ongoing', job_id: jobId });

    // Let the images through one by one while the reader keeps reading.
    for (const key of ALL_KEYS) {
      openGates(job, [key]);
      await waitForResults(job.out, (document) => statusOf(document, key) !== 'pending', { run });
    }
    expect((await run.exited).code).toBe(1);
    const progress = await reads;
    expect(progress.length).toBeGreaterThan(20);
    expect(progress, 'progress never goes backwards').toEqual([...progress].sort((a, b) => a - b));
    expect(progress.at(-1)).toBe(ALL_KEYS.length);
  });
});

describe.concurrent('--resume and existing results files', () => {
  it('with no results file yet, --resume simply starts the job', async ({ expect }) => {
    const job = newJob('fresh');
    openGates(job);
    const result = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(result.code, result.stderr).toBe(1);
    expect(comparable(await loadResults(job.out), job.prefix)).toEqual(reference.stores);
  });

  it('refuses the results file of a different manifest, leaving it untouched', async ({
    expect,
  }) => {
    const other = newJob('other');
    const out = keptCopy();
    const result = await runJobHere(['run', other.manifest, '-o', out.path, '--resume', ...ARGS]);
    expectRefusal(result, /^imgjob: cannot resume .* it belongs to a different manifest/, expect);
    out.expectUntouched(expect);
  });

  it.for([
    ['--seed', ['--seed', '8'], /seed was 7, now 8/],
    ['--gpu-delay', ['--gpu-delay', '0'], /gpu_delay was "0-20", now "0"/],
  ] as const)('refuses to resume with a different %s', async ([, change, message], { expect }) => {
    const out = keptCopy();
    const result = await runJobHere([
      'run',
      reference.job.manifest,
      '-o',
      out.path,
      '--resume',
      ...ARGS,
      ...change,
    ]);
    expectRefusal(result, message, expect);
    out.expectUntouched(expect);
  });

  it('refuses an existing results file without --resume or --force', async ({ expect }) => {
    const out = keptCopy();
    const result = await runJobHere(['run', reference.job.manifest, '-o', out.path, ...ARGS]);
    expectRefusal(result, /already exists: use --resume .* or --force/, expect);
    out.expectUntouched(expect);
  });

  it.for([
    ['not JSON (a torn file)', '{"schema_version": 1, "tool": "imgj'],
    ['JSON of something else (a manifest)', JSON.stringify({ count: 0, visits: [] })],
  ] as const)(
    'refuses a results file that is %s, in run --resume and in status',
    async ([, text], { expect }) => {
      const folder = tempFolder();
      const path = join(folder, 'foreign.results.json');
      const manifest = join(folder, 'm.json');
      writeFileSync(path, text);
      writeFileSync(manifest, readFileSync(reference.job.manifest));
      const [run, status] = await Promise.all([
        runJobHere(['run', manifest, '-o', path, '--resume', ...ARGS]),
        runMain(['status', path]),
      ]);
      for (const result of [run, status]) {
        expectRefusal(result, /is not an imgjob results file/, expect);
      }
      expect(readFileSync(path, 'utf8')).toBe(text);
    },
  );
});

// ------------------------------------------------------------------ helpers

function tempFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'imgjob-crash-'));
  folders.push(folder);
  return folder;
}

function newJob(prefix: string): Job {
  const dir = tempFolder();
  const manifest = join(dir, 'job.json');
  const visits = VISITS.map((visit) => ({
    store_id: visit.store,
    image_url: Object.entries(visit.images).map(([key, file]) =>
      server.url(`/gate/${prefix}-${key}/${file}`),
    ),
  }));
  writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }, null, 2));
  return { prefix, dir, manifest, out: join(dir, 'job.results.json') };
}

function gatePath(job: Job, key: string): string {
  return `/gate/${job.prefix}-${key}/`;
}

function openGates(job: Job, keys: readonly string[] = ALL_KEYS): void {
  for (const key of keys) server.gate(`${job.prefix}-${key}`).open();
}

/** Waits until the server saw a request of each key, counting from request number `since`. */
async function heldAt(job: Job, keys: readonly string[], since = 0): Promise<void> {
  await server.until((requests) =>
    keys.every((key) => requests.slice(since).some((r) => r.path.startsWith(gatePath(job, key)))),
  );
}

/** Keys of this job's requests since request number `from`, sorted. */
function requestedKeys(job: Job, from = 0): string[] {
  return server.requests
    .slice(from)
    .filter((r) => r.path.startsWith(`/gate/${job.prefix}-`))
    .map((r) => keyOfPath(r.path))
    .sort();
}

function keyOfPath(path: string): string {
  const gate = path.split('/')[2] ?? '';
  return gate.slice(gate.lastIndexOf('-') + 1);
}

function keyOfUrl(url: string): string {
  return keyOfPath(new URL(url).pathname);
}

function statusOf(document: ResultsDocument, key: string): ImageStatus | undefined {
  for (const store of document.stores) {
    for (const image of store.images) if (keyOfUrl(image.url) === key) return image.status;
  }
  return undefined;
}

/** Keys of the images that have a result, sorted. */
function recordedKeys(document: ResultsDocument): string[] {
  return document.stores
    .flatMap((store) => store.images)
    .filter((image) => image.status !== 'pending')
    .map((image) => keyOfUrl(image.url))
    .sort();
}

function unique(keys: readonly string[]): string[] {
  return [...new Set(keys)].sort();
}

/** Stores with this job's URLs made neutral and wall times dropped, to compare runs. */
function comparable(document: ResultsDocument, prefix: string): unknown {
  const text = JSON.stringify(document.stores).replaceAll(`/gate/${prefix}-`, '/gate/');
  return JSON.parse(text, (key, value: unknown) => (key === 'download_ms' ? undefined : value));
}

function comparableState(document: ResultsDocument): unknown {
  return { status: document.status, counts: document.counts, stores: document.stores };
}

/** Appends half a journal line, as a crash in the middle of a write leaves it. */
function tearJournal(results: string): void {
  appendFileSync(journalPathOf(results), '{"t":"image","s":1,"i":2,"r":{"url":"http://127.0');
}

/** Every image holds one result, the job is over, the journal is gone. */
async function expectFinished(job: Job): Promise<ResultsDocument> {
  const document = await loadResults(job.out);
  expect(document.status).toBe('failed');
  expect(document.counts).toMatchObject({ images: 10, pending: 0, done: 8, failed: 1, skipped: 1 });
  expect(
    document.stores.flatMap((store) => store.images.map((image) => keyOfUrl(image.url))).sort(),
  ).toEqual(ALL_KEYS);
  expect(document.interrupted).toBeUndefined();
  expect(document.finished_at).toEqual(expect.any(String));
  expect(existsSync(journalPathOf(job.out))).toBe(false);
  return document;
}

/** SIGINT/SIGTERM: its exit code, the results saved, and the resume command it printed. */
function expectGracefulStop(result: CliResult, signal: 'SIGINT' | 'SIGTERM', job: Job): string[] {
  expect(result, result.stderr).toMatchObject({ code: EXIT_CODES[signal], signal: null });
  expect(existsSync(journalPathOf(job.out))).toBe(false);
  const saved = JSON.parse(readFileSync(job.out, 'utf8')) as ResultsDocument;
  expect(saved).toMatchObject({ status: 'ongoing', interrupted: true });
  const hint = /^imgjob: interrupted; results saved\. Resume with: imgjob (.+)$/m.exec(
    result.stderr,
  );
  expect(hint?.[1], result.stderr).toBeDefined();
  const args = (hint?.[1] ?? '').split(' ');
  expect(args).toEqual(['run', job.manifest, ...ARGS, '--resume']);
  return args;
}

async function expectStatusNotRunning(path: string, jobId: string): Promise<void> {
  const status = await runMain(['status', path]);
  expect(status.code, status.stderr).toBe(3);
  expect(status.stdout).toContain(jobId);
  // Killed: its stores still read ongoing; stopped by a signal: interrupted.
  expect(status.stdout).toMatch(/\b(ongoing|interrupted)\b/);
  expect(status.stdout).toMatch(/the run (was interrupted|is not running)/);
  expect(status.stdout).not.toMatch(/running \(pid/);
}

function expectRefusal(result: MainResult, message: RegExp, check: typeof expect): void {
  check(result.code, result.stderr).toBe(2);
  const lines = result.stderr.trimEnd().split('\n');
  // One line, and at most a hint after it (a manifest given as a results
  // file: "did you mean imgjob run"); never a stack trace.
  check(lines.length, result.stderr).toBeLessThanOrEqual(2);
  check(lines[0]).toMatch(message);
  if (lines[1] !== undefined) check(lines[1]).toMatch(/did you mean/);
}

/** A copy of a job's results file, and a check that it was not touched. */
function keptCopy(): { path: string; expectUntouched: (check: typeof expect) => void } {
  const path = join(tempFolder(), 'kept.results.json');
  copyFileSync(reference.job.out, path);
  const bytes = readFileSync(path);
  const { mtimeMs } = statSync(path);
  return {
    path,
    expectUntouched: (check) => {
      check(readFileSync(path)).toEqual(bytes);
      check(statSync(path).mtimeMs).toBe(mtimeMs);
      check(existsSync(journalPathOf(path))).toBe(false);
    },
  };
}

/**
 * Reads the results file over and over until `done()`: the snapshot must
 * always be whole JSON, and snapshot + journal a results document. Returns
 * the number of images with a result at each read.
 */
async function readWhileRunning(path: string, done: () => boolean): Promise<number[]> {
  const progress: number[] = [];
  while (!done()) {
    JSON.parse(readFileSync(path, 'utf8'));
    const document = await loadResults(path);
    progress.push(document.counts.images - document.counts.pending);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  return progress;
}
