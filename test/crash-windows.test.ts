/**
 * Crash windows and stops, end to end, on the crash tests' job (see
 * crash.test.ts for the kill points): a journal torn twice, a kill between
 * two journal lines, --force over a killed job's file, a second SIGINT,
 * `imgjob status` while a job runs, and what --resume refuses. Killed runs
 * are the BUILT CLI; every run that is not killed runs main() in this
 * process. The verdict comes from the results file and the server's request
 * log — never from timing.
 *
 * @module-tag e2e
 */
import { copyFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { journalPathOf, oldJournalPathOf } from '../src/results/paths.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import {
  ALL_KEYS,
  ARGS,
  comparable,
  expectFinished,
  recordedKeys,
  statusOf,
  tearJournal,
  useCrashJobs,
} from './helpers/crash-job.js';

const jobs = useCrashJobs();
const { newJob, openGates, heldAt, requestedKeys, tempFolder } = jobs;

describe('a finished job', () => {
  it('resumed right after completion: nothing is fetched, same results, exit 1 as its status', async () => {
    const { job } = jobs.reference;
    const mark = jobs.server.requests.length;
    const resumed = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(requestedKeys(job, mark)).toEqual([]);
    const final = await expectFinished(job);
    expect(final.job_id).toBe(jobs.reference.document.job_id);
    expect(final.stores).toEqual(jobs.reference.document.stores);
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
    const since = jobs.server.requests.length;
    const second = spawnCli(['run', job.manifest, ...ARGS, '--resume']);
    await heldAt(job, ['a2', 'b1', 'd0'], since);
    const atKill = await waitForResults(
      job.out,
      (document) => ['a1', 'c0', 'c1', 'c2'].every((key) => statusOf(document, key) !== 'pending'),
      { run: second },
    );
    await second.kill('SIGKILL');
    expect(recordedKeys(await loadResults(job.out))).toEqual(recordedKeys(atKill));

    const mark = jobs.server.requests.length;
    openGates(job);
    const third = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(third.code, third.stderr).toBe(1);
    const final = await expectFinished(job);
    expect(final.job_id).toBe(jobId);
    expect(comparable(final, job.prefix)).toEqual(jobs.reference.stores);
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
    // Both journals go: a run slowed down (a loaded machine) may have been
    // killed mid-rotation, and a journal.old left behind, replayed, would
    // give S3 back the status this file leaves out.
    rmSync(journalPathOf(job.out), { force: true });
    rmSync(oldJournalPathOf(job.out), { force: true });

    const mark = jobs.server.requests.length;
    openGates(job);
    const resumed = await runJobHere(['run', job.manifest, ...ARGS, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(1);
    const final = await expectFinished(job);
    expect(comparable(final, job.prefix)).toEqual(jobs.reference.stores);
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
    expect(comparable(final, job.prefix)).toEqual(jobs.reference.stores);
  });
});

describe('signals', () => {
  it('a second SIGINT quits at once, still with 130, and leaves the results file whole', async () => {
    // The one phase where a graceful stop waits on the outside world: reading
    // a manifest from a standard input that never ends.
    const job = newJob('twice-sigint');
    const out = join(job.dir, 'kept.results.json');
    copyFileSync(jobs.reference.job.out, out);
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
    await expect(loadResults(out)).resolves.toMatchObject({
      job_id: jobs.reference.document.job_id,
    });
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
    expect(comparable(await loadResults(job.out), job.prefix)).toEqual(jobs.reference.stores);
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
      jobs.reference.job.manifest,
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
    const result = await runJobHere(['run', jobs.reference.job.manifest, '-o', out.path, ...ARGS]);
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
      writeFileSync(manifest, readFileSync(jobs.reference.job.manifest));
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
  copyFileSync(jobs.reference.job.out, path);
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
