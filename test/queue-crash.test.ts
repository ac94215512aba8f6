/**
 * Exactly-once on the queue when parts die: a worker stopped or frozen past
 * its lock (killed: queue-takeover.test.ts), the coordinator killed, Redis
 * restarted empty. Real processes where the fault strikes one (a signal,
 * kill -9); the coordinators and workers beside them run here, through
 * main() and runWorker() (each spawned one costs ~0.3-0.5 s of CPU). A
 * real redis-server (its own for a test that restarts it: the cases run at
 * once), images behind gates; the verdict comes from the results file, the
 * workers' output and what the image server saw.
 *
 * @module-tag e2e
 */

import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import type { ResultsDocument } from '../src/types.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import {
  coordinateHere,
  gatedJob,
  imageStatuses,
  SHORT_LOCK_TIMING,
  SHORT_LOCKS,
  queueTestBed,
  startWorker,
} from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

const ARGS = ['--gpu-delay', '0-20', '--seed', '7', '--retries', '0'];
/**
 * How long a wait on a line or the results file may take before the test
 * fails: the cases run at once, each with a few processes, and a loaded
 * machine may take seconds to start one (a stall itself is seen within the
 * short lock and two checks).
 */
const WAIT = { timeoutMs: 30_000 };

// Several processes per test on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const bed = queueTestBed();
const startWorkerHere = workersHere();
const { available, folders } = bed;

function allDone(document: ResultsDocument): boolean {
  return imageStatuses(document)
    .flat()
    .every((status) => status === 'done');
}

function imageDone(store: number, index: number) {
  return (document: ResultsDocument): boolean =>
    document.stores[store]?.images[index]?.status === 'done';
}

describe.skipIf(!available)('the queue when parts die', () => {
  it.concurrent(
    'SIGTERM on a worker hands its store back at once: the next worker continues after the last recorded image',
    async () => {
      const url = bed.redis.urlFor(2);
      const job = gatedJob(bed.server, 'wterm', [['image.png', 'image.gif', 'baseline.jpg']]);
      folders.push(job.dir);
      const first = await startWorker(url, { slots: 1 });
      job.open(0, 0);
      const run = coordinateHere(['run', job.manifest, ...ARGS, '--queue', url]);
      await bed.server.gate(job.key(0, 1)).reached;
      await run.results(job.out, imageDone(0, 0));
      const stopped = await first.kill('SIGTERM');
      expect(stopped.code, stopped.stderr).toBe(143);
      expect(stopped.stdout).toMatch(/handed back +store S0/);
      expect(stopped.stderr).toContain('every store it held is back in the queue');

      // Default (25 s) locks: only a hand-back lets the store move on in time.
      const second = await startWorkerHere(url, { slots: 1 });
      await second.waitForOutput(/start +store S0 .* from image 2 of 3/, 'stdout', WAIT);
      job.openAll();
      const result = await run.exited;
      expect(result.code, result.stderr).toBe(0);
      expect(allDone(await loadResults(job.out))).toBe(true);
      expect(job.requests(0, 0)).toBe(1);
      await second.stop();
    },
  );

  it.concurrent(
    'a worker frozen past its lock (SIGSTOP, SIGCONT): its late results are rejected, no duplicates',
    async () => {
      const url = bed.redis.urlFor(3);
      const job = gatedJob(bed.server, 'wstop', [['image.png', 'image.gif', 'baseline.jpg']]);
      folders.push(job.dir);
      const frozen = await startWorker(url, { slots: 1, env: SHORT_LOCKS });
      job.open(0, 0);
      const run = coordinateHere(['run', job.manifest, ...ARGS, '--queue', url]);
      await bed.server.gate(job.key(0, 1)).reached;
      await run.results(job.out, imageDone(0, 0));
      frozen.child.kill('SIGSTOP');

      // The store stalls and moves on; the new worker waits at the same image. Its
      // checks are as short as the frozen one's; its own lock is the default, which
      // a turn of this busy process's event loop cannot outlast.
      const second = await startWorkerHere(url, {
        slots: 1,
        timing: { lockDurationMs: 25_000, stalledIntervalMs: SHORT_LOCK_TIMING.stalledIntervalMs },
      });
      await second.waitForOutput(/start +store S0 .* from image 2 of 3/, 'stdout', WAIT);
      await bed.server.until(() => job.requests(0, 1) === 2);
      frozen.child.kill('SIGCONT');
      // Both get image 2 now; only the lock holder's report counts.
      job.open(0, 1);
      await frozen.waitForOutput(/lost lock +store S0/, 'stdout', WAIT);
      job.openAll();
      const result = await run.exited;
      expect(result.code, result.stderr).toBe(0);
      const final = await loadResults(job.out);
      expect(allDone(final)).toBe(true);
      expect(final.counts).toMatchObject({ images: 3, done: 3 });
      expect(frozen.stdout).not.toMatch(/completed +store S0/);
      // BullMQ's refused renewal and completion are no queue error: the lost lock said it.
      expect(frozen.stdout).not.toMatch(/queue error/);
      expect(second.stdout).toMatch(/completed +store S0/);
      expect(job.requests(0, 0)).toBe(1);
      await Promise.all([frozen.kill('SIGINT'), second.stop()]);
    },
  );

  it.concurrent(
    'kill -9 the coordinator, then --resume: it takes the results waiting in Redis and re-enqueues nothing running',
    async () => {
      const url = bed.redis.urlFor(4);
      const job = gatedJob(bed.server, 'ckill', [
        ['image.png', 'image.gif'],
        ['baseline.jpg'],
        ['image.bmp'],
      ]);
      folders.push(job.dir);
      // A process: once in process, a worker was seen to start a store once more across a
      // coordinator's restart (1 in ~6 runs of serve --queue's kill -9 case, not understood).
      const worker = await startWorker(url, { slots: 4 });
      job.open(0, 0);
      const run = spawnCli(['run', job.manifest, ...ARGS, '--queue', url]);
      await Promise.all([
        bed.server.gate(job.key(0, 1)).reached,
        bed.server.gate(job.key(1, 0)).reached,
        bed.server.gate(job.key(2, 0)).reached,
      ]);
      const atKill = await waitForResults(job.out, imageDone(0, 0), { run, ...WAIT });
      await run.kill('SIGKILL');

      // S0 ends with no coordinator: its results wait in the job's stream.
      job.open(0, 1);
      await worker.waitForOutput(/completed +store S0/, 'stdout', WAIT);
      const resumed = coordinateHere(['run', job.manifest, ...ARGS, '--queue', url, '--resume']);
      await resumed.results(job.out, (document) => document.stores[0]?.status === 'completed');
      job.openAll();
      const result = await resumed.exited;
      expect(result.code, result.stderr).toBe(0);
      const final = await loadResults(job.out);
      expect(final.job_id).toBe(atKill.job_id);
      expect(allDone(final)).toBe(true);
      // S1 and S2 ran on once: not handed out again while the worker had them.
      expect([
        job.requests(0, 0),
        job.requests(0, 1),
        job.requests(1, 0),
        job.requests(2, 0),
      ]).toEqual([1, 1, 1, 1]);
      expect(worker.stdout.match(/start +store/g)).toHaveLength(3);
      await worker.kill('SIGINT');
    },
  );

  it.concurrent(
    'Redis restarted empty mid-job, then --resume: the job completes, recorded images stay',
    async () => {
      const redis = await bed.ownRedis();
      const url = redis.url;
      const job = gatedJob(bed.server, 'rlost', [
        ['image.png', 'image.gif', 'baseline.jpg'],
        ['image.bmp'],
      ]);
      folders.push(job.dir);
      const worker = await startWorkerHere(url, { slots: 2 });
      job.open(0, 0);
      const run = spawnCli(['run', job.manifest, ...ARGS, '--queue', url]);
      await Promise.all([
        bed.server.gate(job.key(0, 1)).reached,
        bed.server.gate(job.key(1, 0)).reached,
      ]);
      await waitForResults(job.out, imageDone(0, 0), { run, ...WAIT });
      await run.kill('SIGKILL');
      await redis.restart();

      const resumed = coordinateHere(['run', job.manifest, ...ARGS, '--queue', url, '--resume']);
      job.openAll();
      const result = await resumed.exited;
      expect(result.code, result.stderr).toBe(0);
      const final = await loadResults(job.out);
      expect(allDone(final)).toBe(true);
      expect(job.requests(0, 0)).toBe(1);
      // The runs Redis forgot were fenced off; the stores ran again from where they were.
      expect(worker.stdout).toMatch(/start +store S0 .* from image 2 of 3/);
      await worker.stop();
    },
  );

  it.concurrent(
    'Redis restarted empty under a running coordinator: it hands the lost stores out again and completes',
    async () => {
      const redis = await bed.ownRedis();
      const url = redis.url;
      const job = gatedJob(bed.server, 'rlive', [['image.png', 'image.gif', 'baseline.jpg']]);
      folders.push(job.dir);
      const worker = await startWorkerHere(url, { slots: 2 });
      job.open(0, 0);
      const run = coordinateHere(['run', job.manifest, ...ARGS, '--queue', url]);
      await bed.server.gate(job.key(0, 1)).reached;
      await run.results(job.out, imageDone(0, 0));
      await redis.restart();

      // The coordinator notices, and the store runs again from image 2 beside the stale run.
      await worker.waitForOutput(/start +store S0 .* from image 2 of 3/, 'stdout', WAIT);
      await bed.server.until(() => job.requests(0, 1) === 2);
      job.openAll();
      const result = await run.exited;
      expect(result.code, result.stderr).toBe(0);
      expect(allDone(await loadResults(job.out))).toBe(true);
      expect(job.requests(0, 0)).toBe(1);
      await worker.waitForOutput(/lost lock +store S0/, 'stdout', WAIT);
      await worker.stop();
    },
  );
});
