/**
 * Redis gone for longer than `--queue-wait`: the coordinator saves the
 * results and exits 75 with one line saying what Redis answered; workers
 * wait for Redis to come back, and `--resume` then ends the job as on one
 * machine. Real redis-server (shut down, then started again empty), the
 * BUILT CLI.
 *
 * @module-tag e2e
 */
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { runJobHere } from './helpers/main.js';
import {
  comparable,
  expectPlainLines,
  FAULT_ARGS,
  faultReference,
  queueTestBed,
  startMidRun,
} from './helpers/queue-cluster.js';

vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();
const { available } = bed;

describe.skipIf(!available)('--queue-wait', () => {
  it('Redis away past --queue-wait: results saved, exit 75 with one line; --resume once it is back ends as on one machine', async () => {
    const [expected, midRun] = await Promise.all([
      faultReference(bed, 'qlocal')(),
      startMidRun(bed, 'qwait', 1, ['--queue-wait', '2s']),
    ]);
    // No reconnecting: the shutdown's lost connection is its answer.
    const admin = new Redis(bed.redis.url, { retryStrategy: () => null, maxRetriesPerRequest: 0 });
    admin.on('error', () => undefined);
    await admin.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
    admin.disconnect();

    const stopped = await midRun.run.exited;
    expect(stopped.code, stopped.stderr).toBe(75);
    expect(stopped.stderr).toMatch(
      /^imgjob: Redis unreachable at 127\.0\.0\.1:\d+ \(ECONNREFUSED\); retrying$/m,
    );
    expect(stopped.stderr).toMatch(
      /^imgjob: Redis at redis:\/\/127\.0\.0\.1:\d+\/1 is unreachable \(ECONNREFUSED\) for \d+ s \(--queue-wait\); results saved: run the same command with --resume$/m,
    );
    expectPlainLines(stopped.stderr);
    const saved = await loadResults(midRun.job.out);
    expect(saved).toMatchObject({ status: 'ongoing', interrupted: true });
    expect(saved.counts.done).toBe(2);

    await bed.redis.restart();
    midRun.job.openAll();
    // The resume's process is not the point: what it records is.
    const resumed = await runJobHere([
      'run',
      midRun.job.manifest,
      ...FAULT_ARGS,
      '--queue',
      midRun.url,
      '--resume',
    ]);
    expect(resumed.code, resumed.stderr).toBe(expected.code);
    expect(comparable(await loadResults(midRun.job.out))).toEqual(comparable(expected.document));
    for (const worker of midRun.workers) {
      expect(worker.done, worker.stdout + worker.stderr).toBe(false);
      expectPlainLines(worker.stdout);
    }
  });
});
