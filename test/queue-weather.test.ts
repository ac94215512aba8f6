/**
 * Redis weather mid-run: for 5 s Redis answers OOM (maxmemory below its
 * use), then READONLY (a replica of a dead primary). Workers wait it out and
 * keep their results; nothing dies, nothing is recorded twice, and the job
 * ends as the same job run on one machine. Real redis-server (one per case:
 * the faults are the whole server's, and the cases run at once), the BUILT
 * CLI.
 *
 * @module-tag e2e
 */
import { setTimeout as hold } from 'node:timers/promises';

import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import { freePort } from '../scripts/free-port.js';
import {
  expectSameAsLocal,
  faultReference,
  queueTestBed,
  startMidRun,
  type MidRun,
} from './helpers/queue-cluster.js';

vi.setConfig({ testTimeout: 60_000 });

/** How long each fault lasts: the figure (a failover, a memory spike). */
const FAULT_MS = 5_000;

// Each case starts a redis-server of its own: the file shares none.
const bed = queueTestBed({ sharedRedis: false });
const { available } = bed;

const local = faultReference(bed, 'wlocal');

/** Lets the held images through, so the workers report into the weather. */
function openSecondImages(midRun: MidRun): void {
  midRun.job.open(0, 1);
  midRun.job.open(1, 1);
}

function anyWorkerSays(midRun: MidRun, pattern: RegExp): Promise<string> {
  return Promise.any(midRun.workers.map((worker) => worker.waitForOutput(pattern, 'stdout')));
}

describe.skipIf(!available)('the queue in Redis weather', () => {
  it.concurrent(
    'OOM for 5 s mid-run: workers wait with their results, then the job ends as on one machine',
    async () => {
      const redis = await bed.ownRedis();
      const [expected, midRun] = await Promise.all([local(), startMidRun(bed, 'woom', redis)]);
      const admin = new Redis(redis.url);
      try {
        await admin.config('SET', 'maxmemory', '1');
        openSecondImages(midRun);
        await anyWorkerSays(midRun, /Redis answers OOM \(maxmemory reached\): waiting/);
        await hold(FAULT_MS);
      } finally {
        await admin.config('SET', 'maxmemory', '0');
        admin.disconnect();
      }
      await anyWorkerSays(midRun, /Redis back after \d+ s/);
      await expectSameAsLocal(midRun, expected);
    },
  );

  it.concurrent(
    'read-only for 5 s mid-run (a replica of a dead primary, then promoted): the same',
    async () => {
      const redis = await bed.ownRedis();
      const [expected, midRun] = await Promise.all([local(), startMidRun(bed, 'wro', redis)]);
      const admin = new Redis(redis.url);
      try {
        await admin.call('REPLICAOF', '127.0.0.1', String(await freePort()));
        openSecondImages(midRun);
        await anyWorkerSays(
          midRun,
          /Redis answers READONLY \(it is a replica now: a failover\?\): waiting/,
        );
        await hold(FAULT_MS);
      } finally {
        await admin.call('REPLICAOF', 'NO', 'ONE');
        admin.disconnect();
      }
      await anyWorkerSays(midRun, /Redis back after \d+ s/);
      const result = await expectSameAsLocal(midRun, expected);
      expect(result.stderr).not.toMatch(/internal error/);
    },
  );
});
