/**
 * Redis loses the queue's state mid-run: FLUSHALL, then a restart with
 * empty data. The results file is the truth: the running coordinator says
 * what Redis lost, hands those stores out again from its own record, and
 * the job ends as on one machine (never an exit 70). Real redis-server (one
 * per case: the cases run at once), the BUILT CLI.
 *
 * @module-tag e2e
 */
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import {
  expectSameAsLocal,
  faultReference,
  queueTestBed,
  startMidRun,
} from './helpers/queue-cluster.js';

vi.setConfig({ testTimeout: 60_000 });

// Each case starts a redis-server of its own: the file shares none.
const bed = queueTestBed({ sharedRedis: false });
const { available } = bed;

const local = faultReference(bed, 'llocal');

const LOST_LINE = /imgjob: Redis lost the hand-outs of 2 stores; handing them out again/;

describe.skipIf(!available)('the queue when Redis loses its state', () => {
  it.concurrent(
    'FLUSHALL mid-run: the coordinator hands the lost stores out again; results as on one machine',
    async () => {
      const redis = await bed.ownRedis();
      const [expected, midRun] = await Promise.all([local(), startMidRun(bed, 'lflush', redis)]);
      const admin = new Redis(redis.url);
      await admin.flushall();
      admin.disconnect();
      await midRun.run.waitForOutput(LOST_LINE, 'stderr');
      const result = await expectSameAsLocal(midRun, expected);
      expect(result.stderr.match(LOST_LINE)).toHaveLength(1);
      // The runs Redis forgot were fenced off when their workers reported.
      const workerOutput = midRun.workers.map((worker) => worker.stdout).join('');
      expect(workerOutput).toMatch(/lost lock +store S\d/);
    },
  );

  it.concurrent(
    'a restart with empty data mid-run: the same, and the coordinator says so in one line each',
    async () => {
      const redis = await bed.ownRedis();
      const [expected, midRun] = await Promise.all([local(), startMidRun(bed, 'lrestart', redis)]);
      await redis.restart();
      await midRun.run.waitForOutput(LOST_LINE, 'stderr');
      const result = await expectSameAsLocal(midRun, expected);
      expect(result.stderr).not.toMatch(/ECONNREFUSED \{|errno/);
    },
  );
});
