import { setMaxListeners } from 'node:events';

import type { JobState } from '../results/job-state.js';
import { runStore, type StoreDeps, type StoreOutcome } from './store.js';
import { createTimeSlice } from './time-slice.js';
import type { ImageResult, JobInput, JobStatus, StoreTask } from '../types.js';

/**
 * Runs a task when a store slot is free. `rank` orders a job's own stores
 * (0 first); the controller interleaves the ranks of all jobs fairly.
 */
export type ScheduleStore = <T>(rank: number, task: () => Promise<T>) => Promise<T>;

export type JobDeps = StoreDeps & {
  readonly schedule: ScheduleStore;
  readonly failFast: boolean;
  readonly onStoreEnd?: StoreEndListener | undefined;
};

/**
 * Told when a store of a job ended (completed, failed, or skipped by
 * fail-fast; not when a signal interrupted it), and how long it ran (undefined
 * when it never started): the run's event log.
 */
export type StoreEndListener = (state: JobState, store: number, ms: number | undefined) => void;

export type JobOutcome = {
  readonly status: JobStatus;
  /** The run was stopped by its signal before every store finished. */
  readonly interrupted: boolean;
};

/**
 * Runs one job: its unfinished stores concurrently (as the scheduler allows),
 * each through the store pipeline, recording every result into `state`.
 *
 * The longest stores are ranked first: a store holds its slot from its first
 * image to its last, so starting the long ones early shortens the job. With
 * `failFast`, the first failed store stops the rest of this job, which end
 * `skipped`; other jobs go on.
 */
export async function runJob(
  input: JobInput,
  state: JobState,
  deps: JobDeps,
  signal: AbortSignal,
): Promise<JobOutcome> {
  const failFast = new AbortController();
  const jobSignal = AbortSignal.any([signal, failFast.signal]);
  // Every running store listens on it (downloads, GPU sleeps): many by design.
  setMaxListeners(0, jobSignal, failFast.signal, signal);
  // A resumed job may hold a failed store already: fail-fast then skips the rest.
  if (deps.failFast && input.stores.some((task) => state.storeStatus(task.index) === 'failed')) {
    failFast.abort();
  }
  // In slices of time: a server prepares a 100k-store job while it answers others.
  const preparing = createTimeSlice();
  const byRemainingWork: { readonly task: StoreTask; readonly remaining: number }[] = [];
  for (const task of input.stores) {
    const turn = preparing.turn();
    if (turn !== undefined) await turn;
    if (state.isStoreFinished(task.index)) continue;
    byRemainingWork.push({ task, remaining: task.urls.length - state.firstPending(task.index) });
  }
  byRemainingWork.sort((a, b) => b.remaining - a.remaining);
  const order = byRemainingWork.map(({ task }) => task);
  // Stores that started (hold a slot or held one); a stopped job waits for these only.
  const started = new Set<Promise<StoreOutcome>>();
  let next = 0;
  let outstanding = 0;
  let failure: { readonly error: unknown } | undefined;
  let finish: () => void = () => undefined;
  const allSettled = new Promise<void>((resolve) => {
    finish = resolve;
  });
  // A job keeps only a few stores in the shared queue, the next ones in its
  // order, topped up as they start: the scheduler hands slots out by rank,
  // so the order is the same as with every store queued, but a job of 100k
  // stores neither pays to queue them all nor leaves them there when stopped.
  const queueNext = (): void => {
    const task = jobSignal.aborted ? undefined : order[next];
    if (task === undefined) {
      if (outstanding === 0) finish();
      return;
    }
    const rank = next++;
    outstanding++;
    runOne(task, rank).then(
      () => {
        outstanding--;
        if (outstanding === 0 && (jobSignal.aborted || next >= order.length)) finish();
      },
      (error: unknown) => {
        failure ??= { error };
        finish();
      },
    );
  };
  const runOne = async (task: StoreTask, rank: number): Promise<void> => {
    let startedAt: number | undefined;
    const outcome = await deps.schedule(rank, (): Promise<StoreOutcome> => {
      // A store still queued when the signal fires never starts.
      if (jobSignal.aborted) return Promise.resolve({ status: 'interrupted' });
      startedAt = deps.now();
      queueNext();
      state.setStoreStatus(task.index, 'ongoing');
      const sink = (image: number, result: ImageResult): void => {
        state.recordImage(task.index, image, result);
      };
      const store = runStore(task, deps, sink, jobSignal, state.firstPending(task.index));
      started.add(store);
      return store;
    });
    settleStore(state, task.index, outcome, failFast.signal.aborted);
    if (state.isStoreFinished(task.index)) {
      deps.onStoreEnd?.(
        state,
        task.index,
        startedAt === undefined ? undefined : deps.now() - startedAt,
      );
    }
    if (outcome.status === 'failed' && deps.failFast) failFast.abort();
  };
  for (let queued = 0; queued < QUEUED_PER_JOB && queued <= order.length; queued++) queueNext();
  await Promise.race([allSettled, stoppedStores(signal, started, allSettled)]);
  if (failure !== undefined) throw failure.error;
  // Fail-fast: the stores never queued end skipped too (a user's stop leaves them to resume).
  if (failFast.signal.aborted && !signal.aborted) {
    const slice = createTimeSlice();
    for (const task of order.slice(next)) {
      await slice.turn();
      state.skipStore(task.index);
    }
  }

  return { status: state.status, interrupted: signal.aborted && state.status === 'ongoing' };
}

/**
 * Once `signal` fires, the job is over as soon as its started stores have
 * stopped: its stores still queued behind other jobs' (a server's queue may
 * hold hundreds of thousands) change nothing when their turn comes, so
 * nobody waits for that turn. A fail-fast stop is not this: its queued
 * stores must still be recorded as skipped, on their turn.
 */
async function stoppedStores(
  signal: AbortSignal,
  started: ReadonlySet<Promise<StoreOutcome>>,
  allSettled: Promise<void>,
): Promise<void> {
  if (!signal.aborted) {
    let stop = (): void => undefined;
    const stopped = new Promise<void>((resolve) => {
      stop = resolve;
    });
    signal.addEventListener('abort', stop, { once: true });
    // Taken off once the job ends: a server's stop signal outlives every job,
    // and the listener held every store outcome of the job until shutdown.
    await Promise.race([stopped, allSettled]);
    signal.removeEventListener('abort', stop);
  }
  // Else the job ended by itself: nothing more to wait for.
  if (signal.aborted) await Promise.allSettled([...started]);
}

/** Stores of one job waiting in the shared queue at once; more join as these start. */
const QUEUED_PER_JOB = 8;

function settleStore(
  state: JobState,
  store: number,
  outcome: StoreOutcome,
  stoppedByFailFast: boolean,
): void {
  if (outcome.status === 'completed') state.setStoreStatus(store, 'completed');
  else if (outcome.status === 'failed') state.setStoreStatus(store, 'failed', outcome.error);
  // Interrupted by the user's signal, the store stays as it is, to resume.
  else if (stoppedByFailFast) state.skipStore(store);
}
