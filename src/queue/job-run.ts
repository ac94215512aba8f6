import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { PreparedJob } from '../engine/controller.js';
import type { JobOutcome } from '../engine/job.js';
import type { StoreTask } from '../types.js';
import { applyEntry, storeMasterFailure } from './apply.js';
import type { QueueRunnerOptions } from './coordinator.js';
import {
  CALLED_OFF,
  CONSUMER,
  GROUP,
  PROTOCOL_VERSION,
  handOutsKey,
  progressKey,
  resultsStreamKey,
  storeJobId,
  type ProcessingSettings,
  type ResultEntry,
  type StoreJobData,
} from './protocol.js';
import type { Slots } from './slots.js';

/** How often the stores in flight are checked against the queue (lost by Redis, failed). */
const RECONCILE_MS = 2_000;
/** Longest wait for results before checking the signal and the slots again. */
const READ_BLOCK_MS = 500;

export type JobRunOptions = QueueRunnerOptions & { readonly settings: ProcessingSettings };

/** One job on the queue: its stores in flight, its results stream, its state. */
export class JobRun {
  readonly #job: PreparedJob;
  readonly #queue: Queue<StoreJobData>;
  readonly #redis: Redis;
  readonly #slots: Slots;
  readonly #options: JobRunOptions;
  /** The job's id in Redis. */
  readonly #id: string;
  readonly #stream: string;
  /** Stores not yet handed out, longest first. */
  #todo: StoreTask[] = [];
  /** Stores handed out whose end has not been recorded. */
  readonly #inFlight = new Set<number>();
  #calledOff = false;
  #handOuts = 0;

  constructor(
    job: PreparedJob,
    queue: Queue<StoreJobData>,
    redis: Redis,
    slots: Slots,
    options: JobRunOptions,
  ) {
    this.#job = job;
    this.#queue = queue;
    this.#redis = redis;
    this.#slots = slots;
    this.#options = options;
    this.#id = options.namespace ? `${options.namespace}.${job.state.jobId}` : job.state.jobId;
    this.#stream = resultsStreamKey(this.#id);
  }

  async run(signal: AbortSignal): Promise<JobOutcome> {
    const { state, input } = this.#job;
    await this.#ensureGroup();
    // Results an earlier coordinator left unacknowledged come first, so a
    // store they end is not handed out again.
    for (;;) {
      const pending = await this.#read('0');
      if (pending === 'lost' || pending.length === 0) break;
      await this.#record(pending);
    }
    if (
      this.#options.failFast &&
      input.stores.some((t) => state.storeStatus(t.index) === 'failed')
    ) {
      this.#calledOff = true;
    }
    const unfinished = input.stores.filter((task) => !state.isStoreFinished(task.index));
    for (const task of unfinished) {
      const master = this.#options.storeMaster;
      if (master && !master.ids.has(task.storeId)) await storeMasterFailure(task, state, master);
    }
    // Re-attach: a store the queue still holds is in flight, not to enqueue again.
    const attached = await Promise.all(
      unfinished.map(async (task) => ({ task, live: await this.#isLive(task.index) })),
    );
    for (const { task, live } of attached) {
      if (state.isStoreFinished(task.index)) continue;
      if (live) {
        this.#slots.take();
        this.#inFlight.add(task.index);
      } else {
        this.#todo.push(task);
      }
    }
    this.#todo.sort((a, b) => this.#remaining(b) - this.#remaining(a));
    if (this.#calledOff) await this.#callOffRest();

    let lastCheck = performance.now();
    while (!this.#finished() && !signal.aborted) {
      await this.#handOut();
      const entries = await this.#read('>');
      if (entries === 'lost') {
        await this.#reconcile();
        continue;
      }
      await this.#record(entries);
      if (performance.now() - lastCheck >= RECONCILE_MS) {
        await this.#reconcile();
        lastCheck = performance.now();
      }
    }
    if (signal.aborted) await this.#withdrawWaiting();
    else await this.#cleanUp();
    this.#slots.give(this.#inFlight.size);
    return { status: state.status, interrupted: signal.aborted && state.status === 'ongoing' };
  }

  #finished(): boolean {
    return this.#job.input.stores.every((task) => this.#job.state.isStoreFinished(task.index));
  }

  #remaining(task: StoreTask): number {
    return task.images.length - this.#job.state.firstPending(task.index);
  }

  async #ensureGroup(): Promise<void> {
    try {
      await this.#redis.xgroup('CREATE', this.#stream, GROUP, '0', 'MKSTREAM');
    } catch (error) {
      if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
    }
  }

  /** Hands out stores while slots are free. */
  async #handOut(): Promise<void> {
    while (this.#todo.length > 0 && !this.#calledOff && this.#slots.tryTake()) {
      const task = this.#todo.shift();
      if (!task) break;
      this.#inFlight.add(task.index);
      await this.#enqueue(task);
    }
  }

  async #enqueue(task: StoreTask): Promise<void> {
    const { state } = this.#job;
    const data: StoreJobData = {
      v: PROTOCOL_VERSION,
      jobId: this.#id,
      store: task,
      startAt: state.firstPending(task.index),
      settings: this.#options.settings,
    };
    const id = storeJobId(
      this.#id,
      task.index,
      (this.#handOuts++).toString(36) + Date.now().toString(36),
    );
    // Recorded first: a coordinator that dies between the two lines finds a
    // hand-out the queue does not hold, and hands the store out again.
    await this.#redis.hset(handOutsKey(this.#id), String(task.index), id);
    await this.#queue.add('store', data, { jobId: id });
  }

  async #bullId(store: number): Promise<string | undefined> {
    const id = await this.#redis.hget(handOutsKey(this.#id), String(store));
    return id ?? undefined;
  }

  async #isLive(store: number): Promise<boolean> {
    const id = await this.#bullId(store);
    if (id === undefined) return false;
    const jobState = await this.#queue.getJobState(id);
    if (jobState === 'unknown' || jobState === 'completed') return false;
    if (jobState === 'failed') {
      // A failure of the queue itself (not an image): start the store afresh.
      await this.#queue.remove(id);
      return false;
    }
    return true;
  }

  async #read(cursor: string): Promise<[string, ResultEntry][] | 'lost'> {
    let reply: unknown;
    try {
      reply = await this.#redis.xreadgroup(
        'GROUP',
        GROUP,
        CONSUMER,
        'COUNT',
        1000,
        'BLOCK',
        READ_BLOCK_MS,
        'STREAMS',
        this.#stream,
        cursor,
      );
    } catch (error) {
      // Redis lost the stream (restarted without persistence): rebuild.
      if (error instanceof Error && error.message.includes('NOGROUP')) {
        await this.#ensureGroup();
        return 'lost';
      }
      throw error;
    }
    const streams = reply as [string, [string, string[]][]][] | null;
    const messages = streams?.[0]?.[1] ?? [];
    return messages.map(([id, fields]) => [id, JSON.parse(fieldOf(fields, 'e')) as ResultEntry]);
  }

  /** Records entries, waits until the journal has them, then acknowledges them. */
  async #record(entries: readonly [string, ResultEntry][]): Promise<void> {
    if (entries.length === 0) return;
    for (const [, entry] of entries) {
      const ended = applyEntry(this.#job, entry);
      if (ended === undefined) continue;
      this.#endInFlight(entry.s);
      if (ended === 'failed' && this.#options.failFast && !this.#calledOff) {
        this.#calledOff = true;
        await this.#callOffRest();
      }
    }
    await this.#options.durable?.();
    await this.#redis.xack(this.#stream, GROUP, ...entries.map(([id]) => id));
  }

  #endInFlight(store: number): void {
    if (this.#inFlight.delete(store)) this.#slots.give(1);
  }

  /** Fail-fast: every store not yet ended is skipped, and workers stop running them. */
  async #callOffRest(): Promise<void> {
    const { state } = this.#job;
    const open = [...this.#inFlight, ...this.#todo.map((task) => task.index)];
    this.#todo = [];
    for (const store of open) {
      await this.#redis.hset(progressKey(this.#id), String(store), CALLED_OFF);
      await this.#remove(store);
      if (!state.isStoreFinished(store)) state.skipStore(store);
      this.#endInFlight(store);
    }
  }

  /**
   * Stores in flight that the queue no longer holds (Redis lost them) are
   * handed out again from their first image without a result; stores whose
   * queue job failed for good are recorded as failed.
   */
  async #reconcile(): Promise<void> {
    const { state } = this.#job;
    for (const store of [...this.#inFlight]) {
      const id = await this.#bullId(store);
      const job = id === undefined ? undefined : await this.#queue.getJob(id);
      if (state.isStoreFinished(store)) continue;
      if (job === undefined) {
        const task = this.#job.input.stores[store];
        if (task) await this.#enqueue(task);
      } else if ((await job.getState()) === 'failed') {
        state.setStoreStatus(store, 'failed', `queue: ${job.failedReason}`);
        this.#endInFlight(store);
      }
    }
  }

  /** Interrupted: stores not yet taken by a worker are taken back. */
  async #withdrawWaiting(): Promise<void> {
    for (const store of this.#inFlight) {
      // A store a worker holds is locked and stays: its results wait in the
      // stream for --resume.
      await this.#remove(store);
    }
  }

  /** The job ended: its stream, progress and leftover queue jobs go. */
  async #cleanUp(): Promise<void> {
    const ids = await this.#redis.hvals(handOutsKey(this.#id));
    await Promise.all(ids.map((id) => this.#queue.remove(id).catch(ignore)));
    await this.#redis.del(this.#stream, progressKey(this.#id), handOutsKey(this.#id));
  }

  /** Removes a store's current hand-out from the queue, unless a worker holds it. */
  async #remove(store: number): Promise<void> {
    const id = await this.#bullId(store);
    if (id !== undefined) await this.#queue.remove(id).catch(ignore);
  }
}

function fieldOf(fields: readonly string[], name: string): string {
  const at = fields.indexOf(name);
  return at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? '') : '';
}

function ignore(): void {
  // Deliberately empty: removing a job a worker holds fails, and may.
}
