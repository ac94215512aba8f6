import { Redis, type RedisOptions } from 'ioredis';

import { queueError, redactText, type RedisTarget } from './redis-url.js';
import type { RedisWeather } from './weather.js';

/** How long the first contact with Redis may take before the run is refused. */
const PREFLIGHT_TIMEOUT_MS = 5_000;

/**
 * A connection for BullMQ and imgjob's own commands. `maxRetriesPerRequest:
 * null` is what BullMQ requires of a worker's connections: a command waits
 * for Redis to come back instead of failing after a few reconnects, so a
 * Redis restart pauses the work rather than losing it.
 */
export function connect(target: RedisTarget, name: string, weather: RedisWeather): Redis {
  const redis = new Redis(target.url, connectionOptions(name));
  // ioredis reconnects on its own; an 'error' event with no listener would
  // crash. The weather says once that Redis is away, and when it is back.
  weather.watch(redis);
  redis.on('ready', () => {
    if (weather.current?.condition.kind === 'unreachable') weather.clear();
  });
  return redis;
}

export function connectionOptions(name: string): RedisOptions {
  return {
    connectionName: name,
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    // A failover leaves the old primary read-only: reconnect, to whatever the
    // address points at now. The command still fails (and is retried): the
    // weather says what Redis answered.
    reconnectOnError: (error) => /^READONLY\b/.test(error.message),
  };
}

/**
 * Checks, before anything starts, that Redis answers and is fit for a queue:
 * version ≥ 6.2 (BullMQ's floor) and `maxmemory-policy noeviction` — under
 * any eviction policy Redis may drop a lock or a queued store when memory
 * runs short, and exactly-once would be lost silently. Throws an InputError
 * (exit 2) with one clear line; the URL's credentials never appear in it.
 */
export async function preflight(target: RedisTarget): Promise<void> {
  const redis = new Redis(target.url, {
    lazyConnect: true,
    connectTimeout: PREFLIGHT_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: unknown;
  redis.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      throw queueError(
        `--queue: cannot reach Redis at ${target.safe}: ${describe(lastError ?? error, target)}`,
      );
    }
    if (target.db !== 0) {
      // ioredis selects the database on connecting, but only reports a
      // refusal as an event: the commands would then go to database 0.
      await redis.select(target.db).catch((error: unknown) => {
        throw queueError(
          `--queue: Redis at ${target.safe} refuses database ${target.db}: ${describe(error, target)}`,
        );
      });
    }
    const info = await redis.info();
    const version = field(info, 'redis_version') ?? '0';
    if (!atLeast(version, [6, 2])) {
      throw queueError(`--queue: Redis at ${target.safe} is ${version}; imgjob needs 6.2 or later`);
    }
    const policy = field(info, 'maxmemory_policy') ?? 'unknown';
    if (policy !== 'noeviction') {
      throw queueError(
        `--queue: Redis at ${target.safe} has maxmemory-policy ${policy}; the queue needs noeviction (eviction could drop a lock or a queued store): set "maxmemory-policy noeviction" in redis.conf or CONFIG SET maxmemory-policy noeviction`,
      );
    }
  } finally {
    redis.disconnect();
  }
}

function describe(error: unknown, target: RedisTarget): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(message)) {
    return 'it refused the credentials (check the user and password in the URL)';
  }
  return redactText(message.split('\n')[0] ?? message, target.url);
}

function field(info: string, name: string): string | undefined {
  const match = new RegExp(`^${name}:(.*)$`, 'm').exec(info);
  return match?.[1]?.trim();
}

function atLeast(version: string, floor: readonly [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > floor[0] || (major === floor[0] && minor >= floor[1]);
}
