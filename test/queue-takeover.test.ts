/**
 * kill -9 of a worker: another worker takes its store up within the lock's
 * life plus one stall check after the kill, after the last recorded image
 * (docs/queue.md: ≤ 30 s with the default 25 s lock and 5 s check). The
 * takeover runs with a short lock (IMGJOB_QUEUE_LOCK_MS and
 * IMGJOB_QUEUE_STALLED_MS, the operator's settings); that a worker left to
 * its defaults sets a 25 s lock and a 5 s check is read in Redis. The
 * workers whose process is the point (the one killed, the one left to the
 * command's defaults) are spawned; the coordinators and the survivor run
 * here.
 *
 * @module-tag e2e
 */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import { handOutsKey, lockKey, PREFIX, QUEUE_NAME } from '../src/queue/protocol.js';
import { loadResults } from '../src/results/reader.js';
import {
  comparable,
  coordinateHere,
  expectPlainLines,
  FAULT_ARGS,
  gatedJob,
  localReference,
  queueTestBed,
  startWorker,
} from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

vi.setConfig({ testTimeout: 60_000 });

const LOCK_MS = 2_000;
const STALLED_MS = 500;
/**
 * The most a store may wait for a new worker after the kill: the lock and a
 * stall check, and slack for a loaded machine (the new worker's turn to run).
 */
const TAKEOVER_LIMIT_MS = LOCK_MS + STALLED_MS + 5_000;

const bed = queueTestBed();
const startWorkerHere = workersHere();
const { available, folders } = bed;

const STORES = [['image.png', 'image.gif', 'baseline.jpg', 'image.bmp']] as const;

/** The PTTL of a key once it exists (a stall check's key is set again at each check). */
async function pttlOnceSet(redis: Redis, key: string): Promise<number> {
  for (;;) {
    const ttl = await redis.pttl(key);
    if (ttl > 0) return ttl;
    // Redis state is what this waits on; the pause only spaces the looks.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(!available)('a killed worker', () => {
  it.concurrent(
    'kill -9 of a worker: its store is taken up within lock + stall check, after its last recorded image; results as on one machine',
    async () => {
      const reference = localReference(bed, 'tlocal', STORES, FAULT_ARGS);
      const url = bed.redis.urlFor(1);
      const job = gatedJob(bed.server, 'tkill', STORES);
      folders.push(job.dir);
      const env = {
        IMGJOB_QUEUE_LOCK_MS: String(LOCK_MS),
        IMGJOB_QUEUE_STALLED_MS: String(STALLED_MS),
      };
      const doomed = await startWorker(url, { slots: 1, env });
      job.open(0, 0);
      job.open(0, 1);
      const run = coordinateHere(['run', job.manifest, ...FAULT_ARGS, '--queue', url]);
      await bed.server.gate(job.key(0, 2)).reached;
      // The store is the doomed worker's: the survivor starts while its results come in.
      // Its stall checks are the short ones; its own lock is the default, which a turn
      // of this busy process's event loop cannot outlast.
      const [survivor] = await Promise.all([
        startWorkerHere(url, {
          slots: 1,
          timing: { lockDurationMs: 25_000, stalledIntervalMs: STALLED_MS },
        }),
        run.results(job.out, (document) => document.counts.done === 2),
      ]);
      const killedAt = performance.now();
      await doomed.kill('SIGKILL');
      await survivor.waitForOutput(/start +store S0 .* from image 3 of 4/, 'stdout', {
        timeoutMs: TAKEOVER_LIMIT_MS,
      });
      const takeoverMs = performance.now() - killedAt;
      console.log(
        `takeover after kill -9 of a worker (lock ${LOCK_MS} ms): ${takeoverMs.toFixed(0)} ms`,
      );
      expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_LIMIT_MS);

      job.openAll();
      const result = await run.exited;
      const expected = await reference;
      expect(result.code, result.stderr).toBe(expected.code);
      expect(comparable(await loadResults(job.out))).toEqual(comparable(expected.document));
      // Recorded images are not downloaded again; the one in flight at the kill is.
      expect([0, 1, 2, 3].map((index) => job.requests(0, index))).toEqual([1, 1, 2, 1]);
      expect(survivor.done).toBe(false);
      expectPlainLines(result.stderr);
      expectPlainLines(survivor.stdout);
      await survivor.stop();
    },
  );

  it.concurrent(
    'a worker left to its defaults holds a store with a 25 s lock and looks for stalled ones every 5 s',
    async () => {
      const url = bed.redis.urlFor(2);
      const job = gatedJob(bed.server, 'tdefault', [['image.png']]);
      folders.push(job.dir);
      const worker = await startWorker(url, { slots: 1 });
      const run = coordinateHere(['run', job.manifest, ...FAULT_ARGS, '--queue', url]);
      await bed.server.gate(job.key(0, 0)).reached;
      const { job_id: jobId } = await run.results(job.out, () => true);
      const redis = new Redis(url);
      const queue = new Queue(QUEUE_NAME, { connection: redis, prefix: PREFIX });
      try {
        const [bullId = ''] = await redis.hvals(handOutsKey(jobId));
        // Renewed every 5 s: never less than 20 s left, give or take a busy machine.
        const lockTtl = await redis.pttl(lockKey(queue, bullId));
        expect(lockTtl).toBeGreaterThan(15_000);
        expect(lockTtl).toBeLessThanOrEqual(25_000);
        const checkTtl = await pttlOnceSet(redis, queue.keys['stalled-check'] ?? '');
        expect(checkTtl).toBeLessThanOrEqual(5_000);
      } finally {
        await queue.close();
        redis.disconnect();
      }
      job.openAll();
      expect((await run.exited).code).toBe(0);
      await worker.kill('SIGINT');
    },
  );
});
