/**
 * `serve --queue`: the API hands the stores of a submitted job to `imgjob
 * worker`s, and a job survives the server being killed and started again on
 * the same database. Real redis-server, the BUILT CLI as the server that is
 * killed. The workers run here, and so do the server started again and the
 * cancel case's servers: no signal reaches them, what they record and say is
 * the point (a spawned worker costs ~0.5 s of CPU, a spawned serve --queue
 * ~0.7 s).
 *
 * @module-tag e2e
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { spawnServe, type Served } from './helpers/cli.js';
import {
  comparable,
  expectPlainLines,
  FAULT_STORES,
  gatedJob,
  imageStatuses,
  queueTestBed,
  type GatedJob,
} from './helpers/queue-cluster.js';
import { serversHere, type ServedHere } from './helpers/queue-serve-here.js';
import { workersHere } from './helpers/queue-worker.js';
import { call, finished, results, submitOk, waitForJob } from './helpers/serve-client.js';

// Several processes per test on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const bed = queueTestBed();
const startWorkerHere = workersHere();
const serveHere = serversHere();
const { available, folders } = bed;

/** Starts `imgjob serve --queue` on `db`. */
const serve = (db: string): Promise<Served> =>
  spawnServe(db, ['--gpu-delay', '0-20', '--seed', '7', '--queue', bed.redis.url]);

describe.skipIf(!available)('serve --queue', () => {
  it.concurrent(
    'runs a submitted job on the workers, and the job survives a kill -9 and restart of serve',
    async () => {
      const job = gatedJob(bed.server, 'serve', [
        ['image.png', 'image.gif', 'baseline.jpg'],
        ['image.bmp'],
      ]);
      folders.push(job.dir);
      const db = join(job.dir, 'jobs.db');
      const worker = await startWorkerHere(bed.redis.url, { slots: 2 });
      const first = await serve(db);
      job.open(0, 0);
      const id = await submitOk(first.url, JSON.parse(readFileSync(job.manifest, 'utf8')));
      await Promise.all([
        bed.server.gate(job.key(0, 1)).reached,
        bed.server.gate(job.key(1, 0)).reached,
      ]);
      await waitForJob(
        first.url,
        id,
        (document) => document.stores[0]?.images[0]?.status === 'done',
      );
      expect(worker.stdout).toMatch(/start +store S0/);
      await first.run.kill('SIGKILL');

      // S1 ends while no server runs: its results wait in Redis.
      job.open(1, 0);
      await worker.waitForOutput(/completed +store S1/, 'stdout');
      // The server started again: what it takes up is the point, not its process.
      const second = await serveHere(db, { gpuDelay: '0-20', seed: 7, queue: bed.redis.url });
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
        // The worker's lines say which store started again, should one be fetched twice.
        expect(job.requests(store, index), `${job.key(store, index)}\n${worker.stdout}`).toBe(1);
      }
      expect(worker.stdout.match(/start +store/g), worker.stdout).toHaveLength(2);
      await second.close();
      await worker.stop();
    },
  );

  it.concurrent(
    'a cancel stops the stores running on workers within 2 s, nothing more is downloaded, and the job ends as a local cancel',
    async () => {
      const url = bed.redis.urlFor(5);
      const worker = await startWorkerHere(url, { slots: 2 });
      const cancelled = async (prefix: string, queue?: string) => {
        const job = gatedJob(bed.server, prefix, FAULT_STORES);
        folders.push(job.dir);
        const served = await serveHere(join(job.dir, 'jobs.db'), {
          gpuDelay: '20',
          seed: 7,
          queue,
        });
        job.open(0, 0);
        job.open(1, 0);
        const id = await submitOk(served.url, JSON.parse(readFileSync(job.manifest, 'utf8')));
        await Promise.all([
          bed.server.gate(job.key(0, 1)).reached,
          bed.server.gate(job.key(1, 1)).reached,
        ]);
        await waitForJob(served.url, id, (document) => document.counts.done === 2);
        const reply = await call(served.url, `/api/jobs/${id}`, { method: 'DELETE' });
        expect(reply.status).toBe(200);
        return { job, served, id };
      };
      const finish = async ({
        job,
        served,
        id,
      }: {
        job: GatedJob;
        served: ServedHere;
        id: number;
      }) => {
        job.openAll();
        const document = await results(served.url, id);
        // The graceful stop (SIGTERM's; the command then exits 0) ends without an error.
        await served.close();
        return { job, document };
      };

      // The local cancel (the reference) runs beside the queued one: their gates are their own.
      const [local, queued] = await Promise.all([
        cancelled('cancellocal').then(finish),
        cancelled('cancelqueue', url),
      ]);
      // The 2 s the issue allows; the workers look every half second.
      await worker.waitForOutput(/called off +store S0/, 'stdout', { timeoutMs: 2_000 });
      await worker.waitForOutput(/called off +store S1/, 'stdout', { timeoutMs: 2_000 });
      const remote = await finish(queued);
      expect(comparable(remote.document)).toEqual(comparable(local.document));
      expect(imageStatuses(remote.document)).toEqual([
        ['done', 'skipped', 'skipped'],
        ['done', 'skipped', 'skipped'],
      ]);
      // Nothing past the image in flight at the cancel was asked for.
      expect([remote.job.requests(0, 2), remote.job.requests(1, 2)]).toEqual([0, 0]);
      expect(worker.done).toBe(false);
      expectPlainLines(worker.stdout);
      await worker.stop();
    },
  );
});
