/**
 * One coordinator per job, on any machine: a lease in Redis (job → the
 * coordinator's id, host, pid, since when, last renewal) that expires unless
 * renewed. A second coordinator of the same job (a copy of its results file
 * on another machine, both `--resume`) is refused; one that lost its lease
 * stops recording results.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { Redis } from 'ioredis';

import { isProcessAlive } from '../utils/process-alive.js';
import { redisScript, type RedisScript } from './lua-scripts.js';
import { PREFIX, type ProcessIdentity } from './protocol.js';
import { abortable, retrying, type RedisWeather } from './weather.js';

/** How long a lease lives unless renewed: a killed coordinator's job is free again after it. */
export const LEASE_MS = 30_000;
const RENEW_MS = 5_000;

export function leaseKey(jobId: string): string {
  return `${PREFIX}:lease:${jobId}`;
}

/** The coordinator that holds a job's lease. */
export type LeaseHolder = ProcessIdentity & {
  /** Epoch ms. */
  readonly since: number;
  /** Epoch ms of its last renewal. */
  readonly renewed: number;
};

/** 1 renewed, 2 taken, or the holder's [id, host, pid, since, renewed]. */
type ClaimAnswer = 1 | 2 | (string | null)[];
/** A coordinator's id: host and pid for people, a random tail so two never share one. */
export function newCoordinatorId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export class JobLease {
  /** `lua/claimLease-1.lua`: takes the lease when free, renews it when ours. */
  readonly #claimScript: RedisScript<ClaimAnswer>;
  /** `lua/releaseLease-1.lua`: ends the lease if it is the given coordinator's. */
  readonly #releaseScript: RedisScript<0 | 1>;
  readonly #weather: RedisWeather;
  readonly #key: string;
  readonly #id: string;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;

  constructor(redis: Redis, weather: RedisWeather, jobId: string, coordinatorId: string) {
    this.#claimScript = redisScript(redis, 'claimLease-1');
    this.#releaseScript = redisScript(redis, 'releaseLease-1');
    this.#weather = weather;
    this.#key = leaseKey(jobId);
    this.#id = coordinatorId;
  }

  /**
   * Takes the lease, or returns who holds it. A holder on this machine whose
   * process is gone (a coordinator killed outright) is taken over at once.
   */
  async acquire(signal: AbortSignal): Promise<LeaseHolder | undefined> {
    for (;;) {
      const answer = await retrying(this.#weather, () => this.#claim(), signal);
      if (typeof answer === 'number') return undefined;
      const holder = holderOf(answer);
      if (holder.host !== hostname() || isProcessAlive(holder.pid)) return holder;
      await retrying(this.#weather, () => this.#releaseScript([this.#key], [holder.id]), signal);
    }
  }

  /**
   * Renews the lease until `release`; `onLost` hears of another coordinator
   * that took it (ours expired while this one could not renew it).
   */
  keep(onLost: (holder: LeaseHolder) => void): void {
    this.#timer = setInterval(() => {
      this.#renewing ??= this.#claim()
        .then((answer) => {
          // A renewal is a write: answered, Redis takes writes again (a
          // condition only an event told of is over too).
          this.#weather.clear();
          if (typeof answer !== 'number') onLost(holderOf(answer));
        })
        // Redis weather: the next beat tries again (the lease outlives a few).
        .catch((error: unknown) => {
          this.#weather.observe(error);
        })
        .finally(() => {
          this.#renewing = undefined;
        });
    }, RENEW_MS);
    this.#timer.unref();
  }

  /** Stops renewing and ends the lease, if Redis answers within a moment. */
  async release(signal: AbortSignal): Promise<void> {
    clearInterval(this.#timer);
    // A renewal sent just before Redis went away waits in ioredis's queue.
    await abortable(this.#renewing ?? Promise.resolve(), signal).catch(() => undefined);
    await retrying(this.#weather, () => this.#releaseScript([this.#key], [this.#id]), signal).catch(
      () => undefined,
    );
  }

  #claim(): Promise<ClaimAnswer> {
    return this.#claimScript(
      [this.#key],
      [this.#id, hostname(), process.pid, Date.now(), LEASE_MS],
    );
  }
}

function holderOf(fields: readonly (string | null)[]): LeaseHolder {
  const [id, host, pid, since, renewed] = fields;
  return {
    id: id ?? '?',
    host: host ?? '?',
    pid: Number(pid),
    since: Number(since),
    renewed: Number(renewed),
  };
}

/** `job 1f2e… is coordinated by host-a (pid 4242) since 10:02:11 UTC, renewed 3 s ago` */
export function describeHolder(jobId: string, holder: LeaseHolder): string {
  const since = new Date(holder.since).toISOString().replace('T', ' ').slice(0, 19);
  const ago = Math.max(0, Math.round((Date.now() - holder.renewed) / 1000));
  return `job ${jobId} is coordinated by ${holder.host} (pid ${holder.pid}) since ${since} UTC, lease renewed ${ago} s ago`;
}
