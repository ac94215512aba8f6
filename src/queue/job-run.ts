import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

import type { PreparedJob } from '../engine/controller.js';
import type { JobOutcome } from '../engine/job.js';
import type { StoreTask } from '../types.js';
import { AbortedError, InputError } from '../utils/errors.js';
import { applyEntry, storeMasterFailure } from './apply.js';
import type { QueueRunnerOptions } from './coordinator.js';
import { describeHolder, JobLease, type LeaseHolder } from './lease.js';
import {
  CALLED_OFF,
  CANCEL_REASON,
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
import { abortable, retrying, type RedisWeather } from './weather.js';
import { plural } from '../utils/plural.js';

/** How often the stores in flight are checked against the queue (lost by Redis, failed). */
const RECONCILE_MS = 2_000;
/** Longest wait for results before checking the signal and the slots again. */
const READ_BLOCK_MS = 500;

/** How long a stopped run still tries to withdraw its waiting stores and end its lease. */
const GOODBYE_MS = 2_000;

export type JobRunOptions = QueueRunnerOptions & {
  readonly settings: ProcessingSettings;
  readonly weather: RedisWeather;
  /** This coordinator's id: the job's lease holder, its results' consumer. */
  readonly coordinatorId: string;
  /** A result came in (the waiting notice counts the time since the last). */
  readonly onResult: () => void;
  readonly retentionMs: number;
};

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
  /** Fires when the run stops: the caller's signal, or the lease lost. */
  readonly #stop = new AbortController();
  readonly #lease: JobLease;
  /** The lease is ours: the job's keys are this run's to change. */
  #leased = false;
  /** Every store ended: the job's keys go. */
  #done = false;
  /** Another coordinator took the lease: this run stopped recording. */
  #lostTo: LeaseHolder | undefined;

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
    this.#lease = new JobLease(redis, options.weather, this.#id, options.coordinatorId);
  }

  /**
   * Runs the job until it ends or `signal` fires. Redis weather is waited
   * out (the coordinator gives up after --queue-wait, through `signal`).
   * Throws an InputError when another coordinator holds the job.
   */
  async run(signal: AbortSignal): Promise<JobOutcome> {
    const { state } = this.#job;
    const forward = (): void => {
      this.#stop.abort(signal.reason);
    };
    if (signal.aborted) forward();
    signal.addEventListener('abort', forward, { once: true });
    try {
      const holder = await this.#lease.acquire(this.#stop.signal);
      if (holder) {
        throw new InputError(
          'E_QUEUE',
          `--queue: ${describeHolder(state.jobId, holder)}; one coordinator per job: wait for it to end (or stop it)`,
        );
      }
      this.#leased = true;
      this.#lease.keep((other) => {
        this.#lostTo = other;
        this.#stop.abort('lease lost');
      });
      await this.#work();
    } catch (error) {
      // The run was stopped (a signal, a cancel, the lease lost) while it waited on Redis.
      if (!(error instanceof AbortedError && this.#stop.signal.aborted)) throw error;
    } finally {
      signal.removeEventListener('abort', forward);
      await this.#end();
    }
    if (this.#lostTo) {
      throw new InputError(
        'E_QUEUE',
        `--queue: lost the lease of the job: ${describeHolder(state.jobId, this.#lostTo)}; this run stopped recording its results`,
      );
    }
    const stopped = this.#stop.signal.aborted;
    return { status: state.status, interrupted: stopped && state.status === 'ongoing' };
  }

  /** Every Redis command of the run: weather is waited out until the run stops. */
  #call<T>(command: () => Promise<T>, signal = this.#stop.signal): Promise<T> {
    return retrying(this.#options.weather, command, signal);
  }

  async #end(): Promise<void> {
    if (!this.#leased) return;
    // Redis away (the run gave up on it): nothing to say goodbye to.
    const goodbye = this.#options.weather.current
      ? AbortSignal.abort()
      : AbortSignal.timeout(GOODBYE_MS);
    try {
      // The job's keys are the new holder's now.
      if (this.#lostTo) return;
      if (this.#done) await this.#cleanUp(goodbye);
      else {
        if (this.#stop.signal.reason === CANCEL_REASON) await this.#callOff(goodbye);
        else await this.#withdrawWaiting(goodbye);
        await this.#expireKeys(goodbye);
      }
    } catch (error) {
      // Redis did not answer in time: the waiting stores stay for --resume.
      if (!(error instanceof AbortedError && goodbye.aborted)) throw error;
    } finally {
      this.#slots.give(this.#inFlight.size);
      this.#inFlight.clear();
      await this.#lease.release(goodbye);
    }
  }

  async #work(): Promise<void> {
    const { state, input } = this.#job;
    await this.#keepKeys();
    await this.#ensureGroup();
    await this.#claimEarlierResults();
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
    while (!this.#finished() && !this.#stop.signal.aborted) {
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
    this.#done = this.#finished();
  }

  #finished(): boolean {
    return this.#job.input.stores.every((task) => this.#job.state.isStoreFinished(task.index));
  }

  #remaining(task: StoreTask): number {
    return task.urls.length - this.#job.state.firstPending(task.index);
  }

  async #ensureGroup(): Promise<void> {
    await this.#call(() =>
      this.#redis.xgroup('CREATE', this.#stream, GROUP, '0', 'MKSTREAM').catch((error: unknown) => {
        if (!(error instanceof Error && error.message.includes('BUSYGROUP'))) throw error;
        return 'OK';
      }),
    );
  }

  /**
   * Each coordinator reads under its own consumer name: the results an
   * earlier one read and did not acknowledge (it was killed) become this
   * one's, to be read again from the start of its pending list.
   */
  async #claimEarlierResults(): Promise<void> {
    let cursor = '0-0';
    do {
      const reply = (await this.#call(() =>
        this.#redis.xautoclaim(
          this.#stream,
          GROUP,
          this.#options.coordinatorId,
          0,
          cursor,
          'COUNT',
          1000,
          'JUSTID',
        ),
      )) as [string, ...unknown[]];
      cursor = reply[0];
    } while (cursor !== '0-0');
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
      // Its URLs as an array: the job's list is compact, the data is JSON.
      store: { ...task, urls: [...task.urls] },
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
    await this.#call(() => this.#redis.hset(handOutsKey(this.#id), String(task.index), id));
    // Added again after an unanswered try: BullMQ keeps one job per id.
    await this.#call(() => this.#queue.add('store', data, { jobId: id }));
  }

  async #bullId(store: number, signal?: AbortSignal): Promise<string | undefined> {
    const id = await this.#call(
      () => this.#redis.hget(handOutsKey(this.#id), String(store)),
      signal,
    );
    return id ?? undefined;
  }

  async #isLive(store: number): Promise<boolean> {
    const id = await this.#bullId(store);
    if (id === undefined) return false;
    const jobState = await this.#call(() => this.#queue.getJobState(id));
    if (jobState === 'unknown' || jobState === 'completed') return false;
    if (jobState === 'failed') {
      // A failure of the queue itself (not an image): start the store afresh.
      await this.#call(() => this.#queue.remove(id));
      return false;
    }
    return true;
  }

  async #read(cursor: string): Promise<[string, ResultEntry][] | 'lost'> {
    let reply: unknown;
    try {
      reply = await this.#call(() =>
        this.#redis.xreadgroup(
          'GROUP',
          GROUP,
          this.#options.coordinatorId,
          'COUNT',
          1000,
          'BLOCK',
          READ_BLOCK_MS,
          'STREAMS',
          this.#stream,
          cursor,
        ),
      );
    } catch (error) {
      // Redis lost the stream or its group (FLUSHALL, a restart without
      // persistence, a replica behind): rebuild, then see what else it lost.
      if (error instanceof Error && /NOGROUP|UNBLOCKED/.test(error.message)) {
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
    this.#options.onResult();
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
    await this.#call(() => this.#redis.xack(this.#stream, GROUP, ...entries.map(([id]) => id)));
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
      await this.#call(() => this.#redis.hset(progressKey(this.#id), String(store), CALLED_OFF));
      await this.#remove(store);
      if (!state.isStoreFinished(store)) state.skipStore(store);
      this.#endInFlight(store);
    }
  }

  /**
   * A cancelled job (serve): the workers stop its stores at their next look
   * (within a second); what the job's state says of them is the caller's.
   */
  async #callOff(signal: AbortSignal): Promise<void> {
    const stores = [...this.#inFlight];
    if (stores.length === 0) return;
    await this.#call(
      () =>
        this.#redis.hset(
          progressKey(this.#id),
          Object.fromEntries(stores.map((store) => [String(store), CALLED_OFF])),
        ),
      signal,
    );
    for (const store of stores) await this.#remove(store, signal);
  }

  /**
   * Stores in flight that the queue no longer holds (Redis lost them) are
   * handed out again from their first image without a result; stores whose
   * queue job failed for good are recorded as failed.
   */
  async #reconcile(): Promise<void> {
    const { state } = this.#job;
    const lost: StoreTask[] = [];
    for (const store of [...this.#inFlight]) {
      const id = await this.#bullId(store);
      const job = id === undefined ? undefined : await this.#call(() => this.#queue.getJob(id));
      if (state.isStoreFinished(store)) continue;
      if (job === undefined) {
        const task = this.#job.input.stores[store];
        // A store whose end is reported (still unread) is not lost: its
        // queue job went when its worker completed it.
        const reported = await this.#call(() =>
          this.#redis.hget(progressKey(this.#id), String(store)),
        );
        if (task && Number(reported ?? 0) <= task.urls.length) lost.push(task);
      } else if ((await this.#call(() => job.getState())) === 'failed') {
        state.setStoreStatus(store, 'failed', `queue: ${job.failedReason}`);
        this.#endInFlight(store);
      }
    }
    if (lost.length === 0) return;
    this.#options.onNotice?.(
      `Redis lost the hand-outs of ${plural(lost.length, 'store')}; handing them out again`,
    );
    for (const task of lost) await this.#enqueue(task);
  }

  /** Interrupted: stores not yet taken by a worker are taken back. */
  async #withdrawWaiting(signal: AbortSignal): Promise<void> {
    for (const store of this.#inFlight) {
      // A store a worker holds is locked and stays: its results wait in the
      // stream for --resume.
      await this.#remove(store, signal);
    }
  }

  /** The job ended: its stream, progress and leftover queue jobs go. */
  async #cleanUp(signal: AbortSignal): Promise<void> {
    const ids = await this.#call(() => this.#redis.hvals(handOutsKey(this.#id)), signal);
    await abortable(Promise.all(ids.map((id) => this.#queue.remove(id).catch(ignore))), signal);
    await this.#call(() => this.#redis.del(...this.#keys()), signal);
  }

  /** The job's own keys (BullMQ's hold its hand-outs). */
  #keys(): string[] {
    return [this.#stream, progressKey(this.#id), handOutsKey(this.#id)];
  }

  /**
   * The job stopped unfinished: its keys wait for `--resume` for the
   * retention, then go on their own.
   */
  async #expireKeys(signal: AbortSignal): Promise<void> {
    const retention = this.#options.retentionMs;
    await this.#call(() => {
      const batch = this.#redis.multi();
      for (const key of this.#keys()) batch.pexpire(key, retention);
      return batch.exec();
    }, signal);
  }

  /** A job taken up again keeps its keys while it runs. */
  async #keepKeys(): Promise<void> {
    await this.#call(() => {
      const batch = this.#redis.multi();
      for (const key of this.#keys()) batch.persist(key);
      return batch.exec();
    });
  }

  /** Removes a store's current hand-out from the queue, unless a worker holds it. */
  async #remove(store: number, signal = this.#stop.signal): Promise<void> {
    const id = await this.#bullId(store, signal);
    if (id !== undefined) await abortable(this.#queue.remove(id).catch(ignore), signal);
  }
}

function fieldOf(fields: readonly string[], name: string): string {
  const at = fields.indexOf(name);
  return at >= 0 && at % 2 === 0 ? (fields[at + 1] ?? '') : '';
}

function ignore(): void {
  // Deliberately empty: removing a job a worker holds fails, and may.
}
