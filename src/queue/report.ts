import type { Redis } from 'ioredis';

import {
  CALLED_OFF,
  idempotencyKey,
  lockKey,
  progressKey,
  resultsStreamKey,
  type ResultEntry,
} from './protocol.js';
import { retrying, type RedisWeather } from './weather.js';

/**
 * Appends a result to its job's stream only while the reporting worker still
 * holds the store's BullMQ lock (its token is the fence) and only if the
 * result is past what the store already reported — in one Lua script, so no
 * other worker can take the store between the check and the append.
 *
 * KEYS: lock, stream, progress. ARGV: token, store, first position, next
 * position, idempotency key, entry JSON.
 * Returns 1 appended, 0 a duplicate (or the store was called off, or its job
 * is over: the coordinator creates the stream before it hands anything out
 * and deletes it at the end), -1 the lock is not this worker's any more.
 */
const REPORT_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local reported = tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0')
if tonumber(ARGV[3]) < reported then return 0 end
redis.call('XADD', KEYS[2], '*', 'k', ARGV[5], 'e', ARGV[6])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
return 1
`;

export type ReportOutcome = 'recorded' | 'duplicate' | 'lock-lost';

type ReportingRedis = Redis & {
  imgjobReport(...args: (string | number)[]): Promise<number>;
};

/**
 * Sends fenced reports for the stores this worker runs. Redis weather (OOM,
 * READONLY, a restart) is waited out: a report is sent until Redis answers
 * it, and the fence decides then whether it still counts.
 */
export class Reporter {
  readonly #redis: ReportingRedis;
  readonly #weather: RedisWeather;

  constructor(redis: Redis, weather: RedisWeather) {
    redis.defineCommand('imgjobReport', { numberOfKeys: 3, lua: REPORT_SCRIPT });
    this.#redis = redis as ReportingRedis;
    this.#weather = weather;
  }

  async report(
    fence: { readonly jobId: string; readonly bullJobId: string; readonly token: string },
    entry: ResultEntry,
    imageCount: number,
  ): Promise<ReportOutcome> {
    const [first, next] =
      entry.t === 'image' ? [entry.i, entry.i + 1] : [entry.from, imageCount + 1];
    const answer = await retrying(this.#weather, () =>
      this.#redis.imgjobReport(
        lockKey(fence.bullJobId),
        resultsStreamKey(fence.jobId),
        progressKey(fence.jobId),
        fence.token,
        entry.s,
        first,
        next,
        idempotencyKey(entry, fence.jobId),
        JSON.stringify(entry),
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
