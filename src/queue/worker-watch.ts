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
  /**
   * Epoch ms when it was found lost: its presence expired without a clean
   * stop (killed, frozen, cut off). `running` is what it ran then; those
   * stores go to other workers once their locks expire.
   */
  readonly lost_at?: number;
};

/** How long a lost worker stays listed. */
const LOST_SHOWN_MS = 10 * 60_000;

export type WorkerWatch = {
  /**
   * The last snapshot, host then pid order, then the workers lost in the
   * last minutes (with `lost_at`); empty until the first refresh.
   */
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
  const lost = new Map<string, WorkerView>();
  let inFlight: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (inFlight ??= readPresence(redis, options.namespace)
      .then(async ({ workers, gone }) => {
        const now = Date.now();
        for (const id of gone) {
          const last = snapshot.find((worker) => worker.id === id) ?? viewOfId(id);
          lost.set(id, { ...last, lost_at: now });
        }
        for (const worker of workers) lost.delete(worker.id); // it woke up (a freeze)
        for (const [id, worker] of lost) {
          if (now - (worker.lost_at ?? now) > LOST_SHOWN_MS) lost.delete(id);
        }
        snapshot = workers;
        // Seen: off the list (after the snapshot, so a failed removal loses nothing).
        if (gone.length > 0) await redis.srem(WORKERS_KEY, ...gone);
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
    list: () => (lost.size === 0 ? snapshot : [...snapshot, ...lost.values()]),
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
  return (await readPresence(redis, namespace)).workers;
}

/**
 * The workers on this queue, and the ids of those lost: a worker that stops
 * takes its id off the list, one killed outright leaves it behind with its
 * key expired. Only the watcher takes those off (`forget`), so it is the
 * one to see them.
 */
async function readPresence(
  redis: Redis,
  namespace: string | undefined,
): Promise<{ readonly workers: WorkerView[]; readonly gone: string[] }> {
  const ids = await redis.smembers(WORKERS_KEY);
  if (ids.length === 0) return { workers: [], gone: [] };
  const values = await redis.mget(ids.map(workerKey));
  const gone = ids.filter((_, index) => values[index] === null);
  const workers = values
    .flatMap((value) => {
      const presence = value === null ? undefined : parsePresence(value);
      return presence ? [viewOf(presence, namespace)] : [];
    })
    .sort((a, b) => a.host.localeCompare(b.host) || a.pid - b.pid);
  return { workers, gone };
}

/** A lost worker known only by its id (`host:pid:random`). */
function viewOfId(id: string): WorkerView {
  const parts = id.split(':');
  const pid = Number(parts.at(-2));
  return {
    id,
    host: parts.slice(0, -2).join(':') || id,
    pid: Number.isSafeInteger(pid) ? pid : 0,
    slots: 0,
    last_seen: 0,
    running: [],
    other_stores: 0,
  };
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
