/**
 * One coordinator per job, on any machine: a second coordinator of the same
 * job (a copy of its results file, `--resume`) is refused while the first
 * holds the job's lease, and a coordinator whose lease another took stops
 * recording. Real redis-server, the BUILT CLI as the coordinator a second
 * one is refused beside (a process of its own, whose pid is named); the rest
 * run here (their logic is what counts).
 *
 * @module-tag e2e
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import type { ResultsDocument } from '../src/types.js';
import { runJobHere } from './helpers/main.js';
import {
  expectPlainLines,
  expectSameAsLocal,
  FAULT_ARGS,
  faultReference,
  queueTestBed,
  startMidRun,
  startMidRunHere,
} from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();
const startWorkerHere = workersHere();
const { available } = bed;

describe.skipIf(!available)('one coordinator per job', () => {
  it.concurrent(
    'a second coordinator on a copy of the results file is refused (exit 2, naming the holder); the first ends as on one machine',
    async () => {
      const [expected, midRun] = await Promise.all([
        faultReference(bed, 'llocal')(),
        startMidRun(bed, 'csecond', 3, [], startWorkerHere),
      ]);
      // The copy as on a second machine: its writer is not a process of this one.
      const copy = join(midRun.job.dir, 'copy.results.json');
      const document = JSON.parse(readFileSync(midRun.job.out, 'utf8')) as ResultsDocument;
      writeFileSync(copy, JSON.stringify({ ...document, writer: { pid: 1, host: 'machine-b' } }));
      const second = await runJobHere([
        'run',
        midRun.job.manifest,
        ...FAULT_ARGS,
        '--queue',
        midRun.url,
        '--resume',
        '-o',
        copy,
      ]);
      expect(second.code, second.stderr).toBe(2);
      expect(second.stderr).toMatch(
        new RegExp(
          `^imgjob: --queue: job [0-9a-f-]+ is coordinated by ${hostname()} \\(pid ${midRun.run.pid}\\) since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC, lease renewed \\d+ s ago; one coordinator per job`,
          'm',
        ),
      );
      expectPlainLines(second.stderr);
      await expectSameAsLocal(midRun, expected);
    },
  );

  it.concurrent(
    'a coordinator whose lease another took stops recording and exits 2, naming the new holder',
    async () => {
      const midRun = await startMidRunHere(bed, 'clease', 4, startWorkerHere);
      const { job_id: jobId } = await loadResults(midRun.job.out);
      const admin = new Redis(midRun.url);
      const now = String(Date.now());
      await admin.hset(`imgjob:lease:${jobId}`, {
        id: 'machine-b:4242:abcdef',
        host: 'machine-b',
        pid: '4242',
        since: now,
        renewed: now,
      });
      admin.disconnect();
      const stopped = await midRun.run.exited;
      expect(stopped.code, stopped.stderr).toBe(2);
      expect(stopped.stderr).toMatch(
        new RegExp(
          `^imgjob: --queue: lost the lease of the job: job ${jobId} is coordinated by machine-b \\(pid 4242\\) since .* UTC, lease renewed \\d+ s ago; this run stopped recording its results$`,
          'm',
        ),
      );
      expectPlainLines(stopped.stderr);
      expect(await loadResults(midRun.job.out)).toMatchObject({
        status: 'ongoing',
        interrupted: true,
      });
      midRun.job.openAll();
      for (const worker of midRun.workers) expect(worker.done).toBe(false);
    },
  );
});
