/**
 * A real `redis-server` for the queue tests, on a free loopback port, with
 * no persistence and `maxmemory-policy noeviction` (what imgjob requires).
 *
 * ```ts
 * const redis = await startRedis();   // redis.url = redis://127.0.0.1:<port>/0
 * await redis.restart();              // stops it and starts it again, empty
 * await redis.stop();
 * ```
 *
 * `redisServerPath()` finds the binary. Under CI=true a missing one fails
 * the suite (`requireRedis()` throws); elsewhere the queue tests skip with
 * one line saying how to enable them.
 */
import { redisServerPath, startRedis as launchRedis } from '../../scripts/redis-server.js';

export type { RedisServer } from '../../scripts/redis-server.js';
export { redisServerPath };

/**
 * Whether the queue tests can run here. Without redis-server: under CI it
 * throws (a missing service must not pass as green); elsewhere it prints one
 * line and returns false, so the file skips.
 */
export function requireRedis(): boolean {
  if (redisServerPath() !== undefined) return true;
  if (process.env.CI === 'true') {
    throw new Error(
      'redis-server is missing: the queue tests need it (apt-get install -y redis-server)',
    );
  }
  console.warn(
    'queue tests skipped: no redis-server on this machine (apt-get install redis-server to run them)',
  );
  return false;
}

export async function startRedis(): ReturnType<typeof launchRedis> {
  const binary = redisServerPath();
  if (!binary) throw new Error('redis-server is missing');
  return launchRedis(binary);
}
