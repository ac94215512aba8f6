/**
 * A worker's presence in Redis: one key with what it is and what it runs,
 * rewritten when a store starts or ends and renewed on a heartbeat. The key
 * expires when the heartbeat stops (a killed worker) and is deleted on a
 * clean stop, so readers (serve's dashboard) see only live workers.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import type { Redis } from 'ioredis';

import { PROTOCOL_VERSION, WORKERS_KEY, workerKey, type WorkerPresence } from './protocol.js';

/** How often a worker renews its key; it lives three beats, so one slow beat is harmless. */
export const HEARTBEAT_MS = 2_000;
const TTL_BEATS = 3;
/** How long a stopping worker tries to take itself off the list. */
const STOP_WAIT_MS = 1_000;

type Running = WorkerPresence['running'][number];

/** A fresh worker id: host and pid for people, a random tail so two never share one. */
export function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export class Presence {
  readonly #redis: Redis;
  readonly #id: string;
  readonly #slots: number;
  readonly #startedAt = Date.now();
  readonly #running = new Map<string, Running>();
  readonly #heartbeatMs: number;
  #timer: NodeJS.Timeout | undefined;
  /** One write at a time, and at most one more queued: the latest state wins. */
  #writing: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(
    redis: Redis,
    options: { id: string; slots: number; heartbeatMs?: number | undefined },
  ) {
    this.#redis = redis;
    this.#id = options.id;
    this.#slots = options.slots;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  }

  /** Announces the worker and starts the heartbeat (not waiting: a worker never waits on its listing). */
  start(): void {
    this.#timer = setInterval(() => {
      this.#write();
    }, this.#heartbeatMs);
    this.#timer.unref();
    this.#write();
  }

  /** A store started (`key` is its BullMQ job id). */
  add(key: string, job: string, store: number, storeId: string): void {
    this.#running.set(key, { job, store, store_id: storeId, since: Date.now() });
    this.#write();
  }

  /** A store ended, was handed back or lost. */
  remove(key: string): void {
    if (this.#running.delete(key)) this.#write();
  }

  /**
   * Stops the heartbeat and takes the worker off the list. With Redis away
   * it gives up after `STOP_WAIT_MS` (commands would wait for it forever):
   * the key then expires on its own.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    const leave = async (): Promise<void> => {
      await this.#writing;
      await this.#redis.multi().del(workerKey(this.#id)).srem(WORKERS_KEY, this.#id).exec();
    };
    let timer: NodeJS.Timeout | undefined;
    const givenUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, STOP_WAIT_MS);
    });
    await Promise.race([leave().catch(() => undefined), givenUp]);
    clearTimeout(timer);
  }

  #write(): void {
    if (this.#stopped) return;
    if (this.#writing) {
      this.#again = true;
      return;
    }
    this.#writing = this.#send()
      // Redis away: the next beat tries again; the key expires meanwhile.
      .catch(() => undefined)
      .finally(() => {
        this.#writing = undefined;
        if (this.#again) {
          this.#again = false;
          this.#write();
        }
      });
  }

  async #send(): Promise<void> {
    const presence: WorkerPresence = {
      v: PROTOCOL_VERSION,
      id: this.#id,
      host: hostname(),
      pid: process.pid,
      slots: this.#slots,
      started_at: this.#startedAt,
      seen_at: Date.now(),
      running: [...this.#running.values()],
    };
    await this.#redis
      .multi()
      .set(workerKey(this.#id), JSON.stringify(presence), 'PX', this.#heartbeatMs * TTL_BEATS)
      .sadd(WORKERS_KEY, this.#id)
      .exec();
  }
}
