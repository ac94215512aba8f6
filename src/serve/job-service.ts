/**
 * The jobs of a server: each submitted manifest becomes rows in the database
 * and a job on ONE shared Controller — the same controller → job → store →
 * image core as `imgjob run`, so every job shares one fair store limit.
 * While a job runs its JobState is the single owner of its results (answers
 * come from memory); its changes reach the database in batches. A finished
 * job is answered from the database.
 */
import type { Database } from 'better-sqlite3';

import { Controller } from '../engine/controller.js';
import { optionChanges } from '../engine/job-setup.js';
import { describeError } from '../utils/errors.js';
import type { JobState } from '../results/job-state.js';
import { parseManifest } from '../input/manifest.js';
import { statusDocument } from '../results/status-document.js';
import type { StoreDeps } from '../engine/store.js';
import type { JobInput, ResultOptions, ResultsDocument, StatusDocument } from '../types.js';
import { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
import { JobRecords, type JobSummary } from './job-records.js';

export type JobServiceOptions = {
  /** Most stores in flight at once, over every job. */
  readonly concurrency: number;
  /** What each job records as the options it ran with. */
  readonly resultOptions: ResultOptions;
  /** Download, GPU and store-master dependencies, shared by every job. */
  readonly deps: StoreDeps;
  readonly writer?: BatchWriterOptions | undefined;
  /** Told about failures nobody waits for (a database write, a bug). */
  readonly onError?: ((message: string, error: unknown) => void) | undefined;
  /** Runs the jobs instead of the local Controller (`serve --queue`: on workers). */
  readonly runner?: Pick<Controller, 'submit' | 'load'> | undefined;
};

/** A submission after shutdown began. */
export class ShuttingDownError extends Error {
  constructor() {
    super('the server is shutting down; submit again once it is back');
    this.name = 'ShuttingDownError';
  }
}

export type Health = {
  readonly status: 'ok' | 'stopping';
  /** Jobs running in this process. */
  readonly jobs: number;
  readonly stores: { readonly running: number; readonly waiting: number };
  /** Changes not yet written to the database. */
  readonly unwritten: number;
};

type LiveJob = { readonly state: JobState; readonly settled: Promise<void> };

export class JobService {
  readonly #records: JobRecords;
  readonly #writer: BatchWriter;
  readonly #controller: Pick<Controller, 'submit' | 'load'>;
  readonly #options: JobServiceOptions;
  readonly #stop = new AbortController();
  readonly #live = new Map<number, LiveJob>();

  constructor(db: Database, options: JobServiceOptions) {
    this.#options = options;
    this.#records = new JobRecords(db);
    this.#writer = new BatchWriter(this.#records, {
      ...options.writer,
      onError: (error) => {
        this.#report('cannot write to the database (will retry)', error);
      },
    });
    this.#controller =
      options.runner ??
      new Controller({ concurrency: options.concurrency, failFast: false }, options.deps);
  }

  /**
   * Starts again every job that was ongoing when the server last stopped.
   * Images with a recorded result are kept; the rest (those in flight at the
   * stop included) are processed. Returns the ids, and a warning for each job
   * submitted under different options (it goes on under the current ones).
   */
  resume(): { readonly resumed: readonly number[]; readonly warnings: readonly string[] } {
    const resumed: number[] = [];
    const warnings: string[] = [];
    for (const id of this.#records.unfinished()) {
      let job: ReturnType<JobRecords['load']>;
      try {
        job = this.#records.load(id);
      } catch (error) {
        warnings.push(`job ${id} cannot be resumed: ${describeError(error)}`);
        continue;
      }
      if (job === undefined) continue;
      const changed = optionChanges(job.state.toDocument().options, this.#options.resultOptions);
      if (changed.length > 0) {
        warnings.push(
          `job ${id} was submitted with other options (${changed.join('; ')}): its remaining images use the current options`,
        );
      }
      this.#start(id, job.input, job.state);
      resumed.push(id);
    }
    return { resumed, warnings };
  }

  /**
   * Validates a manifest, records the job and starts it; returns its id at
   * once (the job runs in the background).
   * @throws {ManifestError} listing what is wrong with the manifest.
   * @throws {ShuttingDownError} after `close()` began.
   */
  submit(text: string): number {
    if (this.#stop.signal.aborted) throw new ShuttingDownError();
    const input = parseManifest(text, 'request body');
    const state = this.#records.create(input, this.#options.resultOptions, new Date());
    const id = Number(state.jobId);
    if (state.status === 'ongoing') this.#start(id, input, state);
    return id;
  }

  status(id: number): StatusDocument | undefined {
    const live = this.#live.get(id);
    return live ? statusDocument(live.state.toDocument()) : this.#records.status(id);
  }

  results(id: number): ResultsDocument | undefined {
    return this.#live.get(id)?.state.toDocument() ?? this.#records.document(id);
  }

  /** Recent jobs, newest first (running ones with their counts of this instant). */
  list(limit: number, before?: number): JobSummary[] {
    return this.#records.list(limit, before).map((summary) => {
      const state = this.#live.get(Number(summary.job_id))?.state;
      return state ? { ...summary, status: state.status, counts: state.counts } : summary;
    });
  }

  get health(): Health {
    return {
      status: this.#stop.signal.aborted ? 'stopping' : 'ok',
      jobs: this.#live.size,
      stores: this.#controller.load,
      unwritten: this.#writer.size,
    };
  }

  /** Resolves once every change recorded so far is in the database (`serve --queue` acks then). */
  written(): Promise<void> {
    return this.#writer.written();
  }

  /**
   * Stops taking new images and new jobs, waits for the running stores to
   * stop (images in flight are left to redo, as after a crash), and writes
   * every change. Jobs left ongoing resume at the next start.
   */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#live.values()].map((job) => job.settled));
    this.#writer.flush();
  }

  #start(id: number, input: JobInput, state: JobState): void {
    this.#writer.watch(state);
    const settled = this.#controller.submit({ input, state }, this.#stop.signal).then(
      () => undefined,
      (error: unknown) => {
        // A bug, not a failed image: the job stays ongoing and resumes at the next start.
        this.#report(`job ${id} stopped on an internal error`, error);
      },
    );
    const live: LiveJob = {
      state,
      // In the database before the job leaves memory, so an answer never goes back in time.
      settled: settled
        .then(() => this.#writer.written())
        .then(() => {
          this.#writer.unwatch(state);
          this.#live.delete(id);
        }),
    };
    this.#live.set(id, live);
  }

  #report(message: string, error: unknown): void {
    this.#options.onError?.(message, error);
  }
}
