import PQueue from 'p-queue';

import type { JobState } from '../results/job-state.js';
import {
  runJob,
  type JobDeps,
  type JobOutcome,
  type ScheduleStore,
  type StoreEndListener,
} from './job.js';
import type { StoreDeps } from './store.js';
import { createTimeSlice } from './time-slice.js';
import type { JobInput } from '../types.js';

export type PreparedJob = { readonly input: JobInput; readonly state: JobState };

export type ControllerOptions = {
  /** Most stores in flight at once, over all jobs. */
  readonly concurrency: number;
  readonly failFast: boolean;
  /** Told when a store ends (the run's event log). */
  readonly onStoreEnd?: StoreEndListener | undefined;
};

/**
 * Maps jobs onto ONE store-slot limit shared by every job it is given, for as
 * long as it lives (`imgjob run` gives it all its jobs at once; a server
 * submits them as they come).
 *
 * Fairness: each job ranks its own stores (longest first) and a free slot
 * goes to the lowest rank waiting, earlier submissions first within a rank —
 * so jobs take turns and a big job cannot starve a small one, while each job
 * still starts its longest stores first.
 */
export class Controller {
  readonly #queue: PQueue;
  readonly #deps: JobDeps;

  constructor(options: ControllerOptions, deps: StoreDeps) {
    this.#queue = new PQueue({ concurrency: options.concurrency });
    // No signal goes to p-queue: it would reject a running store's promise at
    // once and lose its outcome. A store that starts after an abort returns
    // at once instead, so the queue drains quickly.
    // Stores that end at once must still let the event loop turn between them.
    const slice = createTimeSlice();
    const schedule: ScheduleStore = async (rank, task) =>
      this.#queue.add(
        async () => {
          await slice.turn();
          return task();
        },
        { priority: -rank },
      );
    this.#deps = { ...deps, schedule, failFast: options.failFast, onStoreEnd: options.onStoreEnd };
  }

  /** Runs a job to its end (or until `signal` fires) over the shared limit. */
  submit(job: PreparedJob, signal: AbortSignal): Promise<JobOutcome> {
    return runJob(job.input, job.state, this.#deps, signal);
  }

  /** Stores running and waiting, for health reports. */
  get load(): { readonly running: number; readonly waiting: number } {
    return { running: this.#queue.pending, waiting: this.#queue.size };
  }
}

/** Runs several jobs at the same time over one shared store limit. */
export function runController(
  jobs: readonly PreparedJob[],
  options: ControllerOptions,
  deps: StoreDeps,
  signal: AbortSignal,
): Promise<JobOutcome[]> {
  const controller = new Controller(options, deps);
  return Promise.all(jobs.map((job) => controller.submit(job, signal)));
}
