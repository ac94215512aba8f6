/**
 * Who the coordinator talks to: workers on another database of the same
 * Redis are not counted as its workers (it says it waits for one), URLs a
 * worker cannot work with are refused at start, and a second coordinator of
 * the same job (a copy of its results file, `--resume`) is refused while the
 * first holds the job's lease. Real redis-server, the BUILT CLI.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import type { ResultsDocument } from '../src/types.js';
import { runCli, spawnCli } from './helpers/cli.js';
import {
  expectPlainLines,
  expectSameAsLocal,
  FAULT_ARGS,
  FAULT_STORES,
  gatedJob,
  localReference,
  queueTestBed,
  startMidRun,
  startWorker,
} from './helpers/queue-cluster.js';

vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();
const { available, folders } = bed;

let reference: ReturnType<typeof localReference> | undefined;
const local = (): ReturnType<typeof localReference> =>
  (reference ??= localReference(bed, 'clocal', FAULT_STORES, FAULT_ARGS));

describe.skipIf(!available)('the coordinator and its workers', () => {
  it('a worker on another db is not one of its workers: it says it waits, and ends once one comes on its db', async () => {
    const expected = await local();
    const url = bed.redis.urlFor(1);
    const elsewhere = await startWorker(bed.redis.urlFor(2), { slots: 2 });
    const job = gatedJob(bed.server, 'cotherdb', FAULT_STORES);
    folders.push(job.dir);
    const run = spawnCli(['run', job.manifest, ...FAULT_ARGS, '--queue', url]);
    await run.waitForOutput(
      `imgjob: no imgjob worker on this queue (${url}, prefix imgjob) yet: the stores wait until one starts`,
      'stderr',
    );
    const here = await startWorker(url, { slots: 2 });
    const result = await expectSameAsLocal({ url, job, run, workers: [here, elsewhere] }, expected);
    expect(elsewhere.stdout).not.toMatch(/start +store/);
    expect(result.stderr).not.toMatch(/waiting:/);
  });

  it('refuses a worker whose database or URL cannot work, with exit 2 and one line', async () => {
    const outOfRange = await runCli(['worker', '--queue', bed.redis.urlFor(99)]);
    expect(outOfRange.code, outOfRange.stderr).toBe(2);
    expect(outOfRange.stderr).toMatch(
      /^imgjob: --queue: Redis at redis:\/\/127\.0\.0\.1:\d+\/99 refuses database 99: ERR DB index is out of range\n$/,
    );
    const badEscape = bed.redis.url.replace('redis://', 'redis://:s3cr%zzet@');
    const malformed = await runCli(['worker', '--queue', badEscape]);
    expect(malformed.code, malformed.stderr).toBe(2);
    expect(malformed.stderr).toMatch(
      /^imgjob: --queue: the password in redis:\/\/:\*\*\*@.* malformed %-escape/,
    );
    expectPlainLines(outOfRange.stderr + malformed.stderr, 's3cr');
  });

  it('a second coordinator on a copy of the results file is refused (exit 2, naming the holder); the first ends as on one machine', async () => {
    const expected = await local();
    const midRun = await startMidRun(bed, 'csecond', 3);
    // The copy as on a second machine: its writer is not a process of this one.
    const copy = join(midRun.job.dir, 'copy.results.json');
    const document = JSON.parse(readFileSync(midRun.job.out, 'utf8')) as ResultsDocument;
    writeFileSync(copy, JSON.stringify({ ...document, writer: { pid: 1, host: 'machine-b' } }));
    const second = await runCli([
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
  });
});
