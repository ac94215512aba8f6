/**
 * What the shared queue holds, for the metrics (`imgjob_queue_stores`,
 * `imgjob_workers`): stores by BullMQ state and the workers present. Read on
 * demand over a connection of its own, so a scrape never waits behind the
 * coordinator's or the worker's commands.
 */
import { Queue } from 'bullmq';

import { connect } from './connection.js';
import { PREFIX, QUEUE_NAME } from './protocol.js';
import type { RedisTarget } from './redis-url.js';
import { RedisWeather } from './weather.js';
import { readWorkers } from './worker-watch.js';

export type QueueStats = {
  /** waiting (prioritized ones included), active, delayed, failed. */
  readonly stores: Readonly<Record<'waiting' | 'active' | 'delayed' | 'failed', number>>;
  readonly workers: number;
};

export type QueueStatsReader = {
  read(): Promise<QueueStats>;
  close(): Promise<void>;
};

export function openQueueStats(target: RedisTarget): QueueStatsReader {
  // Silent: the command's own connections say when Redis is away.
  const weather = new RedisWeather(target, () => undefined);
  const redis = connect(target, 'imgjob-metrics', weather);
  const queue = new Queue(QUEUE_NAME, { connection: redis, prefix: PREFIX });
  weather.watch(queue);
  return {
    async read() {
      const [counts, workers] = await Promise.all([
        queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
        readWorkers(redis, undefined),
      ]);
      const count = (state: string): number => counts[state] ?? 0;
      return {
        stores: {
          waiting: count('waiting') + count('prioritized'),
          active: count('active'),
          delayed: count('delayed'),
          failed: count('failed'),
        },
        workers: workers.length,
      };
    },
    async close() {
      await queue.close();
      redis.disconnect();
    },
  };
}
