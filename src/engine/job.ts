import { setMaxListeners } from 'node:events';

import type { JobState } from '../results/job-state.js';
import { runStore, type StoreDeps, type StoreOutcome } from './store.js';
import { createTimeSlice } from './time-slice.js';
import type { ImageResult, JobInput, JobStatus } from '../types.js';

/**
 * Runs a task when a store slot is free. `rank` orders a job's own stores
 * (0 first); the controller interleaves the ranks of all jobs fairly.
 */
export type ScheduleStore = <T>(rank: number, task: () => Promise<T>) => Promise<T>;

export type JobDeps = StoreDeps & {
  readonly schedule: ScheduleStore;
  readonly failFast: boolean;
};

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
  const unfinished = input.stores.filter((task) => !state.isStoreFinished(task.index));
  const byRemainingWork = unfinished
    .map((task) => ({ task, remaining: task.images.length - state.firstPending(task.index) }))
    .sort((a, b) => b.remaining - a.remaining);

  const runOne = async (task: (typeof unfinished)[number], rank: number): Promise<void> => {
    const outcome = await deps.schedule(rank, async (): Promise<StoreOutcome> => {
      // A store still queued when the signal fires never starts.
      if (jobSignal.aborted) return { status: 'interrupted' };
      state.setStoreStatus(task.index, 'ongoing');
      const sink = (image: number, result: ImageResult): void => {
        state.recordImage(task.index, image, result);
      };
      return runStore(task, deps, sink, jobSignal, state.firstPending(task.index));
    });
    settleStore(state, task.index, outcome, failFast.signal.aborted);
    if (outcome.status === 'failed' && deps.failFast) failFast.abort();
  };
  // Queueing 100k stores is a stretch of work of its own: let the event loop turn.
  const slice = createTimeSlice();
  const running: Promise<void>[] = [];
  for (const [rank, { task }] of byRemainingWork.entries()) {
    await slice.turn();
    const store = runOne(task, rank);
    // Observed by Promise.all below; until then a rejection must not count as unhandled.
    store.catch(() => undefined);
    running.push(store);
  }
  await Promise.all(running);

  return { status: state.status, interrupted: signal.aborted && state.status === 'ongoing' };
}

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
