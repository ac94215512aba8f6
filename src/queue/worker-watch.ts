/**
 * The coordinator's view of the connected workers (serve's Workers panel):
 * a snapshot of their presence keys, refreshed on a timer, so reading it is
 * synchronous and costs a page request nothing.
 */
import type { Redis } from 'ioredis';

import { connect } from './connection.js';
import { PROTOCOL_VERSION, WORKERS_KEY, workerKey, type WorkerPresence } from './protocol.js';
import type { RedisTarget } from './redis-url.js';
import { RedisWeather } from './weather.js';

/** One worker as a coordinator shows it: its own jobs by their local ids. */
export type WorkerView = {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly slots: number;
  /** Epoch ms of its last heartbeat. */
  readonly last_seen: number;
  /** The stores of this coordinator's jobs it runs now. */
  readonly running: readonly { readonly job_id: string; readonly store_id: string }[];
  /** Stores it runs for other coordinators sharing the Redis (their ids are theirs). */
  readonly other_stores: number;
};

export type WorkerWatch = {
  /** The last snapshot, host then pid order; empty until the first refresh. */
  list(): readonly WorkerView[];
  /** Reads the workers now (also what the timer does). */
  refresh(): Promise<void>;
  close(): void;
};

export type WorkerWatchOptions = {
  /** The coordinator's job-id namespace (serve's): its jobs show by their local ids. */
  readonly namespace?: string | undefined;
  /** @default 1_000 */
  readonly intervalMs?: number | undefined;
};

export function watchWorkers(target: RedisTarget, options: WorkerWatchOptions = {}): WorkerWatch {
  // Silent: the coordinator's own connections say what Redis does.
  const redis = connect(
    target,
    'imgjob-coordinator-workers',
    new RedisWeather(target, () => undefined),
  );
  let snapshot: readonly WorkerView[] = [];
  let inFlight: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (inFlight ??= readWorkers(redis, options.namespace)
      .then((workers) => {
        snapshot = workers;
      })
      // Redis away: the last snapshot stays until it answers again.
      .catch(() => undefined)
      .finally(() => {
        inFlight = undefined;
      }));
  // refresh() never rejects (Redis away keeps the last snapshot); the catch
  // says so to the linter, which lets no promise float here.
  const tick = (): void => {
    refresh().catch(() => undefined);
  };
  const timer = setInterval(tick, options.intervalMs ?? 1_000);
  timer.unref();
  tick();
  return {
    list: () => snapshot,
    refresh,
    close: () => {
      clearInterval(timer);
      redis.disconnect();
    },
  };
}

/** The workers on this queue (this Redis database, imgjob's prefix), from their presence keys. */
export async function readWorkers(
  redis: Redis,
  namespace: string | undefined,
): Promise<WorkerView[]> {
  const ids = await redis.smembers(WORKERS_KEY);
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map(workerKey));
  const gone = ids.filter((_, index) => values[index] === null);
  // A worker killed outright leaves its id behind; its key expired.
  if (gone.length > 0) await redis.srem(WORKERS_KEY, ...gone);
  return values
    .flatMap((value) => {
      const presence = value === null ? undefined : parsePresence(value);
      return presence ? [viewOf(presence, namespace)] : [];
    })
    .sort((a, b) => a.host.localeCompare(b.host) || a.pid - b.pid);
}

function parsePresence(text: string): WorkerPresence | undefined {
  try {
    const value = JSON.parse(text) as WorkerPresence;
    // A worker of another protocol: its shape is not ours to read.
    return value.v === PROTOCOL_VERSION && Array.isArray(value.running) ? value : undefined;
  } catch {
    return undefined;
  }
}

function viewOf(presence: WorkerPresence, namespace: string | undefined): WorkerView {
  const prefix = namespace === undefined ? '' : `${namespace}.`;
  const running: WorkerView['running'][number][] = [];
  for (const run of presence.running) {
    if (run.job.startsWith(prefix)) {
      running.push({ job_id: run.job.slice(prefix.length), store_id: run.store_id });
    }
  }
  return {
    id: presence.id,
    host: presence.host,
    pid: presence.pid,
    slots: presence.slots,
    last_seen: presence.seen_at,
    running,
    other_stores: presence.running.length - running.length,
  };
}
