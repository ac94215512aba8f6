/**
 * `imgjob queue status|clean`: what the queue holds, job by job (its stores
 * waiting, active or stalled, its coordinator), the workers on it, and the
 * removal of a job's keys — what Bull Board users look for, from a shell.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import { connect, preflight } from './connection.js';
import { leaseKey } from './lease.js';
import {
  handOutsKey,
  lockKey,
  PREFIX,
  progressKey,
  QUEUE_NAME,
  resultsStreamKey,
  type StoreJobData,
} from './protocol.js';
import { queueError, type RedisTarget } from './redis-url.js';
import { RedisWeather } from './weather.js';
import { readWorkers, type WorkerView } from './worker-watch.js';

export type JobOnQueue = {
  /** The job's id in Redis (serve's carry its namespace). */
  readonly job_id: string;
  /** Its coordinator, from the job's lease; null when none holds it (stopped, killed). */
  readonly coordinator: {
    readonly host: string;
    readonly pid: number;
    /** Epoch ms. */
    readonly since: number;
  } | null;
  /** Stores handed out and not yet taken by a worker. */
  readonly waiting: number;
  /** Stores a worker runs (its lock alive). */
  readonly active: number;
  /** Stores whose worker stopped renewing its lock: another takes them up soon. */
  readonly stalled: number;
  /** Stores whose queue job failed for good (infrastructure, not an image). */
  readonly failed: number;
  /** Results reported and not yet recorded by a coordinator. */
  readonly unread: number;
  /** Seconds until the job's keys expire (a stopped job's), or null while kept. */
  readonly expires_in_s: number | null;
};

export type QueueOverview = {
  readonly redis: string;
  readonly jobs: readonly JobOnQueue[];
  readonly workers: readonly WorkerView[];
};

type Admin = { readonly redis: Redis; readonly queue: Queue<StoreJobData>; close(): Promise<void> };

async function openAdmin(target: RedisTarget): Promise<Admin> {
  await preflight(target);
  // A look at the queue: a Redis error ends it with its one line, no waiting.
  const weather = new RedisWeather(target, () => undefined);
  const redis = connect(target, 'imgjob-queue-admin', weather);
  const queue = new Queue<StoreJobData>(QUEUE_NAME, { connection: redis, prefix: PREFIX });
  weather.watch(queue);
  return {
    redis,
    queue,
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}

/** The jobs on the queue and its workers. */
export async function queueOverview(target: RedisTarget): Promise<QueueOverview> {
  const admin = await openAdmin(target);
  try {
    const ids = await jobIds(admin.redis);
    const jobs: JobOnQueue[] = [];
    for (const id of ids) jobs.push(await describeJob(admin, id));
    return { redis: target.safe, jobs, workers: await readWorkers(admin.redis, undefined) };
  } finally {
    await admin.close();
  }
}

export type Cleaned = { readonly job_id: string; readonly keys: number; readonly stores: number };

/**
 * Removes a job's keys now (`jobId`), or those of every job no coordinator
 * holds. A job whose coordinator runs is refused (exit 2): stop it first.
 */
export async function cleanQueue(
  target: RedisTarget,
  jobId: string | undefined,
): Promise<Cleaned[]> {
  const admin = await openAdmin(target);
  try {
    const ids = jobId === undefined ? await jobIds(admin.redis) : [jobId];
    const cleaned: Cleaned[] = [];
    for (const id of ids) {
      const holder = await admin.redis.hmget(leaseKey(id), 'host', 'pid');
      if (holder[0] !== null) {
        if (jobId === undefined) continue;
        throw queueError(
          `queue clean: job ${id} is coordinated by ${holder[0]} (pid ${holder[1] ?? '?'}) now; stop it first`,
        );
      }
      cleaned.push(await cleanJob(admin, id));
    }
    if (jobId !== undefined && cleaned[0]?.keys === 0) {
      throw queueError(`queue clean: no job ${jobId} on ${target.safe}`);
    }
    return cleaned;
  } finally {
    await admin.close();
  }
}

async function cleanJob(admin: Admin, id: string): Promise<Cleaned> {
  const handOuts = await admin.redis.hvals(handOutsKey(id));
  let stores = 0;
  for (const bullId of handOuts) {
    // A store a worker still runs is locked: it stays, and its worker's
    // reports are refused once the stream is gone.
    const removed = await admin.queue.remove(bullId).catch(() => 0);
    if (removed === 1) stores++;
  }
  const keys = await admin.redis.del(
    resultsStreamKey(id),
    progressKey(id),
    handOutsKey(id),
    leaseKey(id),
  );
  return { job_id: id, keys, stores };
}

/** Every job with a key on this queue: its results stream, hand-outs or lease. */
async function jobIds(redis: Redis): Promise<string[]> {
  const ids = new Set<string>();
  for (const kind of ['results', 'handouts', 'lease', 'progress']) {
    const pattern = `${PREFIX}:${kind}:*`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) ids.add(key.slice(`${PREFIX}:${kind}:`.length));
    } while (cursor !== '0');
  }
  return [...ids].sort();
}

async function describeJob(admin: Admin, id: string): Promise<JobOnQueue> {
  const { redis, queue } = admin;
  const [lease, handOuts, ttl] = await Promise.all([
    redis.hmget(leaseKey(id), 'host', 'pid', 'since'),
    redis.hvals(handOutsKey(id)),
    redis.pttl(resultsStreamKey(id)),
  ]);
  const counts = { waiting: 0, active: 0, stalled: 0, failed: 0 };
  for (const bullId of handOuts) {
    const state = await queue.getJobState(bullId);
    if (state === 'waiting' || state === 'prioritized' || state === 'delayed') counts.waiting++;
    else if (state === 'failed') counts.failed++;
    else if (state === 'active') {
      if ((await redis.exists(lockKey(queue, bullId))) === 1) counts.active++;
      else counts.stalled++;
    }
  }
  const [host, pid, since] = lease;
  return {
    job_id: id,
    coordinator:
      host === null || host === undefined ? null : { host, pid: Number(pid), since: Number(since) },
    ...counts,
    unread: await unread(redis, id),
    expires_in_s: ttl > 0 ? Math.round(ttl / 1000) : null,
  };
}

/** Entries of the job's stream its coordinator has not acknowledged, or not read. */
async function unread(redis: Redis, id: string): Promise<number> {
  const groups = (await redis.xinfo('GROUPS', resultsStreamKey(id)).catch(() => [])) as unknown[][];
  let total = 0;
  for (const group of groups) {
    const fields = new Map<string, unknown>();
    for (let at = 0; at + 1 < group.length; at += 2) fields.set(String(group[at]), group[at + 1]);
    total += Number(fields.get('pending') ?? 0) + Number(fields.get('lag') ?? 0);
  }
  return total;
}
