/**
 * `run --queue` and `imgjob worker`, end to end: a real redis-server (started
 * here, stopped after), coordinators and workers as processes of the BUILT
 * CLI where the process counts (a signal, --threads) and in this process
 * where only their logic does (startWorkerHere, main()), images behind the
 * fault server's gates (usage errors through main(), in this process). Every wait is on an
 * output line, a gate reached or the results file — never on time. The
 * cases run at once, each on a Redis database of its own.
 *
 * @module-tag e2e
 */
import { existsSync } from 'node:fs';

import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import { runJobHere, runMain } from './helpers/main.js';
import {
  comparable,
  coordinateHere,
  gatedJob,
  imageStatuses,
  queueTestBed,
  startWorker,
} from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

const ARGS = ['--gpu-delay', '0-20', '--seed', '7', '--retries', '0'];
/** Six stores; S2 fails at its HTML page, so its last image is skipped. */
const STORES = [
  ['image.png', 'image.gif', 'baseline.jpg'],
  ['image.webp', 'image.bmp'],
  ['image.tiff', 'not-an-image.html', 'image.png'],
  ['progressive.jpg'],
  ['image.svg', 'image.png', 'image.gif', 'baseline.jpg'],
  ['image.bmp', 'image.webp'],
];

// Several processes per test on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const bed = queueTestBed();
const startWorkerHere = workersHere();
const { available, folders } = bed;

describe.skipIf(!available)('run --queue with imgjob workers', () => {
  it.concurrent(
    'three workers finish a job with the results of one machine and the same --seed',
    async () => {
      const url = bed.redis.urlFor(1);
      const local = gatedJob(bed.server, 'local', STORES);
      const queued = gatedJob(bed.server, 'three', STORES);
      folders.push(local.dir, queued.dir);
      local.openAll();
      queued.openAll();
      // In this process: what they run and record is the point (a worker's SIGTERM is
      // queue-crash.test.ts's).
      const [reference, ...workers] = await Promise.all([
        runJobHere(['run', local.manifest, ...ARGS]),
        ...[1, 2, 3].map(() => startWorkerHere(url)),
      ]);
      expect(reference.code, reference.stderr).toBe(1);

      const run = await runJobHere(['run', queued.manifest, ...ARGS, '--queue', url]);
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toMatch(/S2 .*failed/);

      const expected = await loadResults(local.out);
      const got = await loadResults(queued.out);
      expect(comparable(got)).toEqual(comparable(expected));
      expect(imageStatuses(got)[2]).toEqual(['done', 'failed', 'skipped']);
      // Each image downloaded once; the skipped one never.
      STORES.forEach((files, store) => {
        files.forEach((_, index) => {
          expect(queued.requests(store, index), queued.key(store, index)).toBe(
            store === 2 && index === 2 ? 0 : 1,
          );
        });
      });
      const started = workers.flatMap((worker) => worker.stdout.match(/start +store S\d/g) ?? []);
      expect(started.map((line) => line.slice(-2)).sort()).toEqual(STORES.map((_, s) => `S${s}`));

      // The job leaves no stream, progress or hand-outs behind (a store's queue
      // job goes when BullMQ completes it, which may be a moment after).
      const client = new Redis(url);
      const keys = await client.keys(`imgjob:*${got.job_id}*`);
      client.disconnect();
      expect(keys.filter((key) => !key.startsWith('imgjob:stores:'))).toEqual([]);

      await Promise.all(workers.map((worker) => worker.stop()));
    },
  );

  it.concurrent(
    'a worker downloads on --threads threads: with 2, an image sent to a thread that crashes fails E_THREAD; with 1 it is done',
    async () => {
      // The test seam routes a URL with `crash-me` to a worker thread, which dies on it.
      const env = { IMGJOB_TEST_THREAD_FAULT: 'crash-me' };
      const outcome = async (threads: string, db: number): Promise<unknown> => {
        const url = bed.redis.urlFor(db);
        const job = gatedJob(bed.server, `threads${threads}`, [
          ['image.png?crash-me', 'image.gif'],
        ]);
        folders.push(job.dir);
        job.openAll();
        const worker = await startWorker(url, { env, args: ['--threads', threads] });
        const run = await runJobHere(['run', job.manifest, ...ARGS, '--queue', url]);
        await worker.kill('SIGTERM');
        const [image] = (await loadResults(job.out)).stores[0]?.images ?? [];
        expect(run.code === 0 || run.code === 1, run.stderr).toBe(true);
        return image?.status === 'failed' ? image.code : image?.status;
      };
      const [two, one] = await Promise.all([outcome('2', 6), outcome('1', 7)]);
      expect(two).toBe('E_THREAD');
      expect(one).toBe('done');
    },
  );

  it.concurrent(
    'refuses a wrong URL, an unreachable Redis or an evicting one with exit 2, before anything starts',
    async () => {
      const job = gatedJob(bed.server, 'bad', [['image.png']]);
      folders.push(job.dir);
      const unreachable = 'redis://:sup3rsecret@127.0.0.1:1/0';
      for (const url of ['http://127.0.0.1/0', 'redis://127.0.0.1:6379/x', unreachable]) {
        // One thread: in this process the download threads' module is not built.
        const run = await runMain(['run', job.manifest, '--threads', '1', '--queue', url]);
        expect(run.code, run.stderr).toBe(2);
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
        expect(run.stderr).toMatch(/^imgjob: --queue: /);
        expect(run.stderr).not.toContain('sup3rsecret');
        expect(existsSync(job.out)).toBe(false);
      }
      const worker = await runMain(['worker', '--threads', '1', '--queue', unreachable]);
      expect(worker.code, worker.stderr).toBe(2);
      expect(worker.stderr).toContain('cannot reach Redis at redis://:***@127.0.0.1:1/0');
      expect(worker.stderr + worker.stdout).not.toContain('sup3rsecret');

      // A server of its own: the policy is the whole server's, and the other cases run meanwhile.
      const evicting = (await bed.ownRedis()).url;
      const client = new Redis(evicting);
      await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
      try {
        const run = await runMain(['run', job.manifest, '--threads', '1', '--queue', evicting]);
        expect(run.code, run.stderr).toBe(2);
        expect(run.stderr).toContain('maxmemory-policy allkeys-lru; the queue needs noeviction');
      } finally {
        await client.config('SET', 'maxmemory-policy', 'noeviction');
        client.disconnect();
      }
      expect(existsSync(job.out)).toBe(false);
      expect(job.requests(0, 0)).toBe(0);
    },
  );

  it.concurrent(
    'Ctrl-C on the coordinator stops handing out stores, saves the file, exits 130; --resume finishes it',
    async () => {
      const url = bed.redis.urlFor(3);
      const job = gatedJob(bed.server, 'sigint', [
        ['image.png', 'image.gif'],
        ['baseline.jpg'],
        ['image.bmp'],
        ['image.webp'],
      ]);
      folders.push(job.dir);
      const worker = await startWorkerHere(url, { slots: 4 });
      job.open(0, 0);
      // -c 2: two stores out at a time over the cluster.
      const run = spawnCli(['run', job.manifest, ...ARGS, '-c', '2', '--queue', url]);
      await Promise.all([
        bed.server.gate(job.key(0, 1)).reached,
        bed.server.gate(job.key(1, 0)).reached,
      ]);
      // A loaded machine (npm test's) may take over 10 s to start a process.
      await waitForResults(job.out, (document) => document.counts.done === 1, {
        run,
        timeoutMs: 30_000,
      });
      const stopped = await run.kill('SIGINT');
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toContain('interrupted; results saved');
      const saved = await loadResults(job.out);
      expect(saved).toMatchObject({ status: 'ongoing', interrupted: true });
      expect(imageStatuses(saved)[0]).toEqual(['done', 'pending']);

      // The stores the worker holds finish into the stream; no other is handed out.
      job.openAll();
      await worker.waitForOutput(/completed +store S0/, 'stdout');
      await worker.waitForOutput(/completed +store S1/, 'stdout');
      expect(job.requests(2, 0) + job.requests(3, 0)).toBe(0);

      const resumed = await runJobHere([
        'run',
        job.manifest,
        ...ARGS,
        '-c',
        '2',
        '--queue',
        url,
        '--resume',
      ]);
      expect(resumed.code, resumed.stderr).toBe(0);
      const final = await loadResults(job.out);
      expect(final.job_id).toBe(saved.job_id);
      expect(
        imageStatuses(final)
          .flat()
          .every((status) => status === 'done'),
      ).toBe(true);
      for (const [store, index] of [
        [0, 0],
        [0, 1],
        [1, 0],
        [2, 0],
        [3, 0],
      ] as const) {
        expect(job.requests(store, index), job.key(store, index)).toBe(1);
      }
      await worker.stop();
    },
  );

  it.concurrent(
    '--fail-fast: the first failed store skips the rest, and workers drop the stores called off',
    async () => {
      const url = bed.redis.urlFor(5);
      const job = gatedJob(bed.server, 'failfast', [
        ['image.png', 'image.gif'],
        ['not-an-image.html'],
      ]);
      folders.push(job.dir);
      const worker = await startWorkerHere(url, { slots: 2 });
      job.open(0, 0);
      const run = coordinateHere(['run', job.manifest, ...ARGS, '--fail-fast', '--queue', url]);
      await bed.server.gate(job.key(0, 1)).reached;
      job.open(1, 0);
      const result = await run.exited;
      expect(result.code, result.stderr).toBe(1);
      const document = await loadResults(job.out);
      expect(document.stores.map((store) => store.status)).toEqual(['skipped', 'failed']);
      expect(document.error?.map((entry) => entry.store_id)).toEqual(['S1']);
      // The worker still holding S0 learns at its next report that it was called off.
      job.openAll();
      await worker.waitForOutput(/called off +store S0/, 'stdout');
      expect(worker.stdout).not.toMatch(/completed +store S0/);
      // Its late report left no stream or progress behind (the queue job itself
      // goes when BullMQ completes it).
      const client = new Redis(url);
      const keys = await client.keys(`imgjob:*${document.job_id}*`);
      client.disconnect();
      expect(keys.filter((key) => !key.startsWith('imgjob:stores:'))).toEqual([]);
      await worker.stop();
    },
  );
});
