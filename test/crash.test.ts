/**
 * Crash, stop and resume, end to end (the durability rules: killed at any
 * instant, --resume ends with one result per image), at three kill points
 * by SIGKILL, SIGINT and SIGTERM: the BUILT CLI runs a job whose every image
 * sits behind its own gate of the fault server, is killed at a chosen point,
 * and is resumed with `--resume`. The verdict comes from the results file
 * (snapshot + journal, as `loadResults` reads it) and the server's request
 * log — never from timing: a kill point is reached when the server saw the
 * held requests and the file shows the expected results, and the job cannot
 * move on from there because every image it could start next is held at a
 * closed gate. (Crash windows, a second SIGINT, `status` of a live run and
 * the refusals of --resume: crash-windows.test.ts.)
 *
 * @module-tag e2e
 */
import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { createGpuDelayPicker } from '../src/engine/gpu-delay.js';
import { loadResults } from '../src/results/reader.js';
import { journalPathOf } from '../src/results/paths.js';
import type { ResultsDocument } from '../src/types.js';
import { spawnCli, waitForResults, type CliResult } from './helpers/cli.js';
import { runJobHere, runMain } from './helpers/main.js';
import {
  ALL_KEYS,
  ARGS,
  comparable,
  expectFinished,
  GPU_DELAY,
  recordedKeys,
  SEED,
  statusOf,
  tearJournal,
  unique,
  useCrashJobs,
  type Job,
} from './helpers/crash-job.js';

// A run that is not killed (the reference, every resume) runs main() in this
// process; the runs that are killed are processes.
const jobs = useCrashJobs();
const { newJob, openGates, heldAt, requestedKeys } = jobs;

type Signal = 'SIGKILL' | 'SIGINT' | 'SIGTERM';

describe('the uninterrupted reference run', () => {
  it('measures every image, gives each its seeded GPU time, fails S3 at the HTML page', () => {
    const { document } = jobs.reference;
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
    expect(jobs.server.requestsTo('/gate/ref-c2/')).toEqual([]);
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

      const mark = jobs.server.requests.length;
      openGates(job);
      const resumed = await runJobHere(resumeArgs);
      expect(resumed.code, resumed.stderr).toBe(1);
      const final = await expectFinished(job);
      expect(final.job_id).toBe(atKill.job_id);
      expect(comparable(final, job.prefix)).toEqual(jobs.reference.stores);

      const after = requestedKeys(job, mark);
      expect(after, 'no image was requested twice by the resumed run').toEqual(unique(after));
      const needed = ALL_KEYS.filter((key) => statusOf(final, key) !== 'skipped');
      // Exactly the images without a result were fetched, the held ones again.
      expect(after).toEqual(needed.filter((key) => !point.recorded.includes(key)));
      expect(after.filter((key) => before.includes(key))).toEqual([...point.held].sort());
    },
  );
});

// ------------------------------------------------------------------ helpers

function comparableState(document: ResultsDocument): unknown {
  return { status: document.status, counts: document.counts, stores: document.stores };
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
