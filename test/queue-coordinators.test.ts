/**
 * Who the coordinator talks to: workers on another database of the same
 * Redis are not counted as its workers (it says it waits for one), and URLs
 * a worker cannot work with are refused at start. Real redis-server, the
 * BUILT CLI as coordinator, the workers in this process (their logic is what
 * counts here).
 *
 * @module-tag e2e
 */

import { describe, expect, it, vi } from 'vitest';

import { spawnCli } from './helpers/cli.js';
import { runMain } from './helpers/main.js';
import {
  expectPlainLines,
  expectSameAsLocal,
  FAULT_ARGS,
  FAULT_STORES,
  gatedJob,
  faultReference,
  queueTestBed,
} from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();
const startWorkerHere = workersHere();
const { available, folders } = bed;

const local = faultReference(bed, 'clocal');

describe.skipIf(!available)('the coordinator and its workers', () => {
  it.concurrent(
    'a worker on another db is not one of its workers: it says it waits, and ends once one comes on its db',
    async () => {
      const url = bed.redis.urlFor(1);
      const [expected, elsewhere] = await Promise.all([
        local(),
        startWorkerHere(bed.redis.urlFor(2), { slots: 2 }),
      ]);
      const job = gatedJob(bed.server, 'cotherdb', FAULT_STORES);
      folders.push(job.dir);
      // The coordinator says what it waits for after 1 s of quiet here (30 s by default).
      const run = spawnCli(['run', job.manifest, ...FAULT_ARGS, '--queue', url], {
        env: { IMGJOB_QUEUE_NOTICE_MS: '1000' },
      });
      await run.waitForOutput(
        `imgjob: no imgjob worker on this queue (${url}, prefix imgjob) yet: the stores wait until one starts`,
        'stderr',
        // A loaded machine (npm test's) may take over 10 s to start a process.
        { timeoutMs: 30_000 },
      );
      await run.waitForOutput(
        new RegExp(
          `^imgjob: waiting: 2 store\\(s\\) out, no result for \\d+ s; no imgjob worker on ${url.replace(/[.]/g, '\\.')} \\(prefix imgjob\\): start one with imgjob worker --queue <url>$`,
          'm',
        ),
        'stderr',
      );
      const here = await startWorkerHere(url, { slots: 2 });
      const result = await expectSameAsLocal(
        { url, job, run, workers: [here, elsewhere] },
        expected,
      );
      expect(elsewhere.stdout).not.toMatch(/start +store/);
      expect(result.stderr).toMatch(/waiting: 2 store\(s\) out/);
    },
  );

  it.concurrent(
    'refuses a worker whose database or URL cannot work, with exit 2 and one line',
    async () => {
      const outOfRange = await runMain([
        'worker',
        '--threads',
        '1',
        '--queue',
        bed.redis.urlFor(99),
      ]);
      expect(outOfRange.code, outOfRange.stderr).toBe(2);
      expect(outOfRange.stderr).toMatch(
        /^imgjob: --queue: Redis at redis:\/\/127\.0\.0\.1:\d+\/99 refuses database 99: ERR DB index is out of range\n$/,
      );
      const badEscape = bed.redis.url.replace('redis://', 'redis://:s3cr%zzet@');
      const malformed = await runMain(['worker', '--threads', '1', '--queue', badEscape]);
      expect(malformed.code, malformed.stderr).toBe(2);
      expect(malformed.stderr).toMatch(
        /^imgjob: --queue: the password in redis:\/\/:\*\*\*@.* malformed %-escape/,
      );
      expectPlainLines(outOfRange.stderr + malformed.stderr, 's3cr');
    },
  );
});
