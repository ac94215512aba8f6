/**
 * What imgjob reads of BullMQ's internals, checked against the real BullMQ
 * on a real redis-server, so a BullMQ release that moves them fails here:
 * the key of a job's lock (the fence of every report) and what a worker
 * says when a lock is gone. In-process: a BullMQ Worker of imgjob's queue
 * runs a job and holds it until the test lets it go.
 *
 * @module-tag e2e
 */
import { once } from 'node:events';

import { ErrorCode, Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isLockGone, watchLockLoss } from '../src/queue/lock-loss.js';
import {
  GROUP,
  lockKey,
  PREFIX,
  QUEUE_NAME,
  resultsStreamKey,
  storeJobId,
  type ResultEntry,
} from '../src/queue/protocol.js';
import { parseRedisUrl } from '../src/queue/redis-url.js';
import { Reporter } from '../src/queue/report.js';
import { RedisWeather } from '../src/queue/weather.js';
import { requireRedis, startRedis, type RedisServer } from './helpers/redis.js';

const available = requireRedis();
let server: RedisServer | undefined;
const clients: Redis[] = [];

beforeAll(async () => {
  if (available) server = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await server?.stop();
});

function client(db: number): Redis {
  if (!server) throw new Error('no redis-server');
  // What BullMQ asks of a connection it is given.
  const redis = new Redis(server.urlFor(db), { maxRetriesPerRequest: null });
  clients.push(redis);
  return redis;
}

type Running = { readonly job: Job; readonly token: string };

/**
 * A BullMQ worker of imgjob's queue on database `db` and the job it runs:
 * resolves once the job runs (it holds it until `finish`).
 */
async function runOneJob(
  db: number,
  options: { readonly lockDuration: number; readonly lockRenewTime?: number },
): Promise<{ queue: Queue; worker: Worker; running: Running; finish: () => void }> {
  let finish = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    finish = resolve;
  });
  let started = (_: Running): void => undefined;
  const running = new Promise<Running>((resolve) => {
    started = resolve;
  });
  const queue = new Queue(QUEUE_NAME, { connection: client(db), prefix: PREFIX });
  const worker = new Worker(
    QUEUE_NAME,
    async (job, token) => {
      started({ job, token: token ?? '' });
      await held;
    },
    // No stall check while the test runs: the lock is the subject.
    { connection: client(db), prefix: PREFIX, stalledInterval: 600_000, ...options },
  );
  await queue.add('store', {}, { jobId: storeJobId('job1', 0, 'a') });
  return { queue, worker, running: await running, finish };
}

describe.skipIf(!available)('BullMQ internals imgjob relies on', () => {
  it("the lock key our code computes holds the running job's token, and the report script fences on it", async () => {
    const { queue, worker, running, finish } = await runOneJob(1, { lockDuration: 30_000 });
    const { job, token } = running;
    const id = job.id ?? '';
    const redis = client(1);
    expect(token).not.toBe('');
    expect(lockKey(worker, id)).toBe(lockKey(queue, id));
    expect(await redis.get(lockKey(worker, id))).toBe(token);

    // The report script reads the lock there: the holder's token counts, another is refused.
    const weather = new RedisWeather(parseRedisUrl(server?.urlFor(1) ?? ''), () => undefined);
    const reporter = new Reporter(redis, weather, worker);
    await redis.xgroup('CREATE', resultsStreamKey('job1'), GROUP, '0', 'MKSTREAM');
    const image = (i: number): ResultEntry => ({
      t: 'image',
      s: 0,
      i,
      r: { url: `http://127.0.0.1/${i}.png`, status: 'skipped' },
    });
    const fence = { jobId: 'job1', bullJobId: id, token };
    expect(await reporter.report(fence, image(0), 3)).toBe('recorded');
    expect(await reporter.report({ ...fence, token: `${token}x` }, image(1), 3)).toBe('lock-lost');
    expect(await redis.xlen(resultsStreamKey('job1'))).toBe(1);

    finish();
    await once(worker, 'completed');
    expect(await redis.exists(lockKey(worker, id))).toBe(0);
    await worker.close();
    await queue.close();
  });

  it('a lost lock is told apart by what BullMQ gives for it (an event, an error code), not by its wording', async () => {
    const { queue, worker, running, finish } = await runOneJob(2, {
      lockDuration: 2_000,
      lockRenewTime: 100,
    });
    const lockLoss = watchLockLoss(worker);
    const seen: { readonly error: Error; readonly lockLoss: boolean }[] = [];
    worker.on('error', (error) => seen.push({ error, lockLoss: lockLoss(error) }));
    const id = running.job.id ?? '';

    // Redis lost the lock (an expiry, a flush): the next renewal fails…
    await client(2).del(lockKey(worker, id));
    const [failedIds] = (await once(worker, 'lockRenewalFailed')) as [string[]];
    expect(failedIds).toEqual([id]);
    // …and the job's completion is refused.
    finish();
    while (!seen.some(({ error }) => 'code' in error)) await once(worker, 'error');
    await worker.close();
    await queue.close();

    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(
      seen.every((entry) => entry.lockLoss),
      seen.map((e) => e.error.message).join('\n'),
    ).toBe(true);
    const refused = seen.find(({ error }) => 'code' in error)?.error;
    expect((refused as Error & { code?: number }).code).toBe(ErrorCode.JobLockNotExist);
    expect(isLockGone(refused)).toBe(true);
    // Anything else is still an error to say.
    expect(lockLoss(new Error(`could not renew lock for job ${id}`))).toBe(false);
    expect(isLockGone(new Error('Missing lock for job 1'))).toBe(false);
  });
});
