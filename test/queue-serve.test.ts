/**
 * `serve --queue`: the API hands the stores of a submitted job to `imgjob
 * worker` processes, and a job survives the server being killed and started
 * again on the same database. Real redis-server, the BUILT CLI.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { spawnServe, type Served } from './helpers/cli.js';
import { gatedJob, imageStatuses, queueTestBed, startWorker } from './helpers/queue-cluster.js';
import { finished, submitOk, waitForJob } from './helpers/serve-client.js';

// Several processes per test on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const bed = queueTestBed();
const { available, folders } = bed;

/** Starts `imgjob serve --queue` on `db`. */
const serve = (db: string): Promise<Served> =>
  spawnServe(db, ['--gpu-delay', '0-20', '--seed', '7', '--queue', bed.redis.url]);

describe.skipIf(!available)('serve --queue', () => {
  it('runs a submitted job on the workers, and the job survives a kill -9 and restart of serve', async () => {
    const job = gatedJob(bed.server, 'serve', [
      ['image.png', 'image.gif', 'baseline.jpg'],
      ['image.bmp'],
    ]);
    folders.push(job.dir);
    const db = join(job.dir, 'jobs.db');
    const worker = await startWorker(bed.redis.url, { slots: 2 });
    const first = await serve(db);
    job.open(0, 0);
    const id = await submitOk(first.url, JSON.parse(readFileSync(job.manifest, 'utf8')));
    await Promise.all([
      bed.server.gate(job.key(0, 1)).reached,
      bed.server.gate(job.key(1, 0)).reached,
    ]);
    await waitForJob(first.url, id, (document) => document.stores[0]?.images[0]?.status === 'done');
    expect(worker.stdout).toMatch(/start +store S0/);
    await first.run.kill('SIGKILL');

    // S1 ends while no server runs: its results wait in Redis.
    job.open(1, 0);
    await worker.waitForOutput(/completed +store S1/, 'stdout');
    const second = await serve(db);
    job.openAll();
    const final = await waitForJob(second.url, id, finished);
    expect(final.status).toBe('completed');
    expect(imageStatuses(final)).toEqual([['done', 'done', 'done'], ['done']]);
    for (const [store, index] of [
      [0, 0],
      [0, 1],
      [0, 2],
      [1, 0],
    ] as const) {
      expect(job.requests(store, index), job.key(store, index)).toBe(1);
    }
    expect(worker.stdout.match(/start +store/g)).toHaveLength(2);
    await second.run.kill('SIGTERM');
    await worker.kill('SIGINT');
  });
});
