import type { Redis } from 'ioredis';

import { redisScript, type RedisScript } from './lua-scripts.js';
import {
  CALLED_OFF,
  idempotencyKey,
  lockKey,
  progressKey,
  resultsStreamKey,
  type QueueKeys,
  type ResultEntry,
} from './protocol.js';
import { retrying, type RedisWeather } from './weather.js';

export type ReportOutcome = 'recorded' | 'duplicate' | 'lock-lost';

/**
 * Sends fenced reports for the stores this worker runs (`lua/report-3.lua`:
 * a result counts only while the worker holds the store's BullMQ lock, and
 * only once). Redis weather (OOM, READONLY, a restart) is waited out: a
 * report is sent until Redis answers it, and the fence decides then whether
 * it still counts.
 */
export class Reporter {
  readonly #redis: Redis;
  readonly #weather: RedisWeather;
  readonly #queue: QueueKeys;
  /** 1 appended, 0 a duplicate (or called off, or the job is over), -1 the lock is another's. */
  readonly #report: RedisScript<1 | 0 | -1>;

  /** `queue`: the worker's BullMQ queue, which names the stores' lock keys. */
  constructor(redis: Redis, weather: RedisWeather, queue: QueueKeys) {
    this.#redis = redis;
    this.#weather = weather;
    this.#queue = queue;
    this.#report = redisScript(redis, 'report-3');
  }

  async report(
    fence: { readonly jobId: string; readonly bullJobId: string; readonly token: string },
    entry: ResultEntry,
    imageCount: number,
  ): Promise<ReportOutcome> {
    const [first, next] =
      entry.t === 'image' ? [entry.i, entry.i + 1] : [entry.from, imageCount + 1];
    const answer = await retrying(this.#weather, () =>
      this.#report(
        [
          lockKey(this.#queue, fence.bullJobId),
          resultsStreamKey(fence.jobId),
          progressKey(fence.jobId),
        ],
        [
          fence.token,
          entry.s,
          first,
          next,
          idempotencyKey(entry, fence.jobId),
          JSON.stringify(entry),
        ],
      ),
    );
    if (answer === 1) return 'recorded';
    return answer === 0 ? 'duplicate' : 'lock-lost';
  }

  /** How many images of a store its reports already hold (where a re-run starts). */
  async reported(jobId: string, store: number): Promise<number> {
    const value = await retrying(this.#weather, () =>
      this.#redis.hget(progressKey(jobId), String(store)),
    );
    return value === null ? 0 : Number(value);
  }

  /**
   * Whether the coordinator called the store off (fail-fast, a cancel): one
   * try, as a poll; an unanswered one says no.
   */
  async calledOff(jobId: string, store: number): Promise<boolean> {
    const value = await this.#redis.hget(progressKey(jobId), String(store)).catch(() => null);
    return value !== null && Number(value) >= CALLED_OFF;
  }
}
