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
import { describeError, ImgjobError } from '../utils/errors.js';
import { createTimeSlice } from '../engine/time-slice.js';
import type { JobState } from '../results/job-state.js';
import { canonicalManifest, parseManifest, parseManifestInSlices } from '../input/manifest.js';
import { statusDocument } from '../results/status-document.js';
import type { StoreDeps } from '../engine/store.js';
import type { JobInput, ResultOptions, ResultsDocument } from '../types.js';
import { BatchWriter, type BatchWriterOptions } from './batch-writer.js';
import { JobRecords, type JobStatusDocument, type JobSummary } from './job-records.js';
import { CANCEL_REASON } from '../queue/protocol.js';
import { CANCELLED, jobView, type JobView } from './job-view.js';
import type { EventLog } from '../log/event-log.js';
import { logJobEnd, logJobStart } from '../log/job-events.js';
import { plural } from '../utils/plural.js';
import { sumCounts } from '../metrics/state-counts.js';
import { StorageUnavailableError } from './storage-error.js';
import { StorageHealth } from './storage-health.js';

export type JobServiceOptions = {
  /** Most stores in flight at once, over every job. */
  readonly concurrency: number;
  /** What each job records as the options it ran with. */
  readonly resultOptions: ResultOptions;
  /** Download, GPU and store-master dependencies, shared by every job. */
  readonly deps: StoreDeps;
  readonly writer?: BatchWriterOptions | undefined;
  /** Most stores and images one submitted job may hold. */
  readonly limits?: JobLimits | undefined;
  /** Where jobs starting and ending, and failures nobody waits for, are told. */
  readonly log?: EventLog | undefined;
  /** Runs the jobs instead of the local Controller (`serve --queue`: on workers). */
  readonly runner?: Pick<Controller, 'submit' | 'load'> | undefined;
};

/** The most one submitted job may hold (`--max-stores`, `--max-images`). */
export type JobLimits = {
  /** @default 100_000 */
  readonly maxStores: number;
  /** @default 1_000_000 */
  readonly maxImages: number;
};

/** A submitted job over a limit: answered 413. */
export class JobTooLargeError extends ImgjobError {
  readonly what: 'stores' | 'images';
  /** How many the job has. */
  readonly count: number;
  /** How many the server takes in one job. */
  readonly limit: number;

  constructor(what: 'stores' | 'images', count: number, limit: number) {
    super(
      'E_JOB_TOO_LARGE',
      `the job has ${count} ${what}; this server takes at most ${limit} ${what} in one job (--max-${what})`,
    );
    this.what = what;
    this.count = count;
    this.limit = limit;
  }
}

/** A submission after shutdown began. */
export class ShuttingDownError extends ImgjobError {
  constructor() {
    super('E_SHUTTING_DOWN', 'the server is shutting down; submit again once it is back');
  }
}

export type Health = {
  /** `unhealthy`: the database takes no writes (see `reason`); answered 503 like `stopping`. */
  readonly status: 'ok' | 'stopping' | 'unhealthy';
  readonly reason?: string;
  /** Jobs running in this process. */
  readonly running_jobs: number;
  /** Stores being processed now, over every job. */
  readonly running_stores: number;
  /** Stores waiting for a free slot, over every job. */
  readonly queued_stores: number;
  /** Changes not yet written to the database. */
  readonly unwritten_changes: number;
};

type LiveJob = {
  readonly state: JobState;
  readonly input: JobInput;
  /** Fired by `cancel()`. */
  readonly cancel: AbortController;
  readonly settled: Promise<void>;
};

export class JobService {
  readonly #records: JobRecords;
  readonly #writer: BatchWriter;
  readonly #controller: Pick<Controller, 'submit' | 'load'>;
  readonly #options: JobServiceOptions;
  readonly #stop = new AbortController();
  readonly #live = new Map<number, LiveJob>();
  /** Submits whose rows are being written: close() waits for them. */
  readonly #creating = new Set<Promise<unknown>>();
  readonly #storage: StorageHealth;

  constructor(db: Database, options: JobServiceOptions) {
    this.#options = options;
    this.#records = new JobRecords(db);
    this.#storage = new StorageHealth(
      db.name,
      () => {
        this.#records.probeWrite();
      },
      options.log,
    );
    this.#writer = new BatchWriter(this.#records, {
      ...options.writer,
      onError: (error) => {
        this.#storage.writerFailing(error);
      },
      onRecovered: (failedWrites) => {
        this.#storage.writerRecovered(failedWrites);
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
      if (!this.#records.isComplete(id)) {
        // Its submit never answered: the server stopped while writing its rows.
        this.#records.remove(id);
        warnings.push(
          `job ${id} was being submitted when the server stopped; it was never accepted, and is removed`,
        );
        continue;
      }
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
      this.#start(id, job.input, job.state, 'resumed');
      resumed.push(id);
    }
    return { resumed, warnings };
  }

  /**
   * Validates a manifest, records the job and starts it; resolves with its
   * id at once (the job runs in the background). The three steps take turns
   * of the event loop apart: each is one stretch of work for a big job
   * (parsing 100k stores, writing their rows, queueing them), and other
   * clients are answered between them.
   * @throws {ManifestError} listing what is wrong with the manifest.
   * @throws {JobTooLargeError} past `limits`.
   * @throws {StorageUnavailableError} when the database takes no writes (full disk).
   * @throws {ShuttingDownError} after `close()` began.
   */
  async submit(manifest: Uint8Array | string): Promise<number> {
    if (this.#stop.signal.aborted) throw new ShuttingDownError();
    // In slices of the event loop: a 16 MB body takes a second or more to parse.
    const slice = createTimeSlice(SUBMIT_SLICE_MS);
    const { input, canonical } =
      typeof manifest === 'string'
        ? withCanonical(parseManifest(manifest, 'request body'))
        : await parseManifestInSlices(manifest, 'request body', () => slice.turn());
    const limits = this.#options.limits;
    if (limits !== undefined) {
      if (input.stores.length > limits.maxStores)
        throw new JobTooLargeError('stores', input.stores.length, limits.maxStores);
      if (input.imageCount > limits.maxImages)
        throw new JobTooLargeError('images', input.imageCount, limits.maxImages);
    }
    await nextTurn();
    if (this.#stopping()) throw new ShuttingDownError();
    let state: JobState;
    const creating = this.#records.create(
      input,
      this.#options.resultOptions,
      new Date(),
      () =>
        nextTurn().then(() => {
          // Stopping: what was written is removed, and the client told to come back.
          if (this.#stopping()) throw new ShuttingDownError();
        }),
      canonical,
    );
    this.#creating.add(creating);
    try {
      state = await creating;
    } catch (error) {
      if (error instanceof ShuttingDownError) throw error;
      const problem = this.#storage.failed(error);
      if (problem === undefined) throw error;
      this.#options.log?.write('error', 'submit_refused', `a submit was refused: ${problem}`, {
        reason: problem,
      });
      throw new StorageUnavailableError(problem, { cause: error });
    } finally {
      this.#creating.delete(creating);
    }
    if (!this.#writer.failing) this.#storage.worked();
    const id = Number(state.jobId);
    this.#start(id, input, state, 'submitted');
    return id;
  }

  /** The Retail Pulse status document, with the job's counts beside its three fields. */
  status(id: number): JobStatusDocument | undefined {
    const state = this.#live.get(id)?.state;
    if (state === undefined) return this.#records.status(id);
    // Not the whole document: a poll of a 100k-store job must stay cheap.
    const status = state.status;
    const error = status === 'failed' ? statusDocument(state.toDocument()).error : undefined;
    return {
      status,
      job_id: state.jobId,
      ...(error === undefined ? {} : { error }),
      counts: state.counts,
    };
  }

  results(id: number): ResultsDocument | undefined {
    const state = this.#live.get(id)?.state;
    if (state === undefined) return this.#records.document(id);
    // A job that just ended but is not yet written: write it now, so it is
    // answered as it will stay (with its finished_at), not from memory.
    if (state.status !== 'ongoing' && this.#writer.flush()) return this.#records.document(id);
    return state.toDocument();
  }

  /** The state of a job running now (the dashboard follows its changes); undefined for any other. */
  running(id: number): JobState | undefined {
    return this.#live.get(id)?.state;
  }

  /** The job with its counts and one summary per store. */
  view(id: number): JobView | undefined {
    const document = this.results(id);
    return document === undefined ? undefined : jobView(document);
  }

  /**
   * Cancels a job: its running stores stop, and every store not yet
   * finished ends `failed` with the error "cancelled" (its images not yet
   * done `skipped`), so the job ends `failed`. Cancelling a finished job
   * changes nothing. Resolves with the job once the change is recorded;
   * undefined for an unknown job.
   */
  async cancel(id: number): Promise<JobView | undefined> {
    const live = this.#live.get(id);
    if (live !== undefined) {
      // Told apart from a stop: with --queue, the workers drop its stores.
      live.cancel.abort(CANCEL_REASON);
      await live.settled;
    }
    return this.view(id);
  }

  /**
   * Takes up the failed stores of an ended job again (as `run --retry-failed`
   * does): each from its first image without a `done` result, done images
   * kept; a cancelled job's stores failed with "cancelled" go on the same way.
   * `running` when the job has not ended; undefined for an unknown job.
   */
  retryFailed(
    id: number,
  ): { readonly view: JobView; readonly reopened: number } | 'running' | undefined {
    if (this.#live.has(id)) return 'running';
    if (this.#stop.signal.aborted) throw new ShuttingDownError();
    const job = this.#records.load(id);
    if (job === undefined) return undefined;
    let reopened = 0;
    this.#start(id, job.input, job.state, 'retried', () => {
      reopened = job.state.reopenFailedStores();
    });
    return { view: jobView(job.state.toDocument()), reopened };
  }

  /** Recent jobs, newest first (running ones with their counts of this instant). */
  list(limit: number, before?: number): JobSummary[] {
    return this.#records.list(limit, before).map((summary) => {
      const state = this.#live.get(Number(summary.job_id))?.state;
      return state ? { ...summary, status: state.status, counts: state.counts } : summary;
    });
  }

  get health(): Health {
    const load = this.#controller.load;
    const counts = {
      running_jobs: this.#live.size,
      running_stores: load.running,
      queued_stores: load.waiting,
      unwritten_changes: this.#writer.size,
    };
    if (this.#stop.signal.aborted) return { status: 'stopping', ...counts };
    const reason = this.#storage.reason(this.#writer.failing);
    return reason === undefined
      ? { status: 'ok', ...counts }
      : { status: 'unhealthy', reason, ...counts };
  }

  /** Stores of the running jobs by status (metrics). */
  storeCounts(): Record<string, number> {
    return sumCounts([...this.#live.values()].map(({ state }) => state.storeCounts));
  }

  /** Jobs of the database by status; empty while it cannot be read (metrics). */
  jobCounts(): Record<string, number> {
    try {
      return this.#records.countByStatus();
    } catch {
      return {};
    }
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
    await Promise.allSettled([...this.#creating]);
    await Promise.all([...this.#live.values()].map((job) => job.settled));
    const unwritten = this.#writer.size;
    if (!this.#writer.flush()) {
      // Not lost: the database still has those stores unfinished, so their
      // images are processed again at the next start.
      this.#options.log?.write(
        'error',
        'shutdown_unwritten',
        `could not write the last ${plural(unwritten, 'change')} at shutdown; the images they record will be processed again at the next start`,
        { unwritten },
      );
    }
  }

  #stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  /** `before` runs once the job's changes are recorded, before it starts (a retry reopens its stores there). */
  #start(
    id: number,
    input: JobInput,
    state: JobState,
    how: 'submitted' | 'resumed' | 'retried',
    before?: () => void,
  ): void {
    const log = this.#options.log;
    const started = performance.now();
    // A retry takes the job up again: a resume, to the log.
    if (log) logJobStart(log, how === 'retried' ? 'resumed' : how, String(id), state.counts);
    this.#writer.watch(state);
    before?.();
    state.startRun();
    const cancel = new AbortController();
    const signal = AbortSignal.any([this.#stop.signal, cancel.signal]);
    // Queueing the stores of a big job is one more stretch of work: on a later
    // turn, after the submit is answered. A cancel or a stop in between is seen
    // by the job at once (no store starts).
    const ran =
      state.status === 'ongoing'
        ? nextTurn()
            .then(() => this.#controller.submit({ input, state }, signal))
            .then(
              () => (cancel.signal.aborted ? cancelStores(input, state) : undefined),
              (error: unknown) => {
                // A bug, not a failed image: the job stays ongoing and resumes at the next start.
                log?.error(`job ${id} stopped on an internal error`, error);
              },
            )
        : Promise.resolve();
    const live: LiveJob = {
      state,
      input,
      cancel,
      // In the database before the job leaves memory, so an answer never goes back in time.
      settled: ran
        .then(() => this.#writer.written())
        .then(() => {
          this.#writer.unwatch(state);
          this.#live.delete(id);
          if (state.status !== 'ongoing')
            this.#ended(id, state, cancel.signal.aborted, performance.now() - started);
        }),
    };
    this.#live.set(id, live);
  }

  #ended(id: number, state: JobState, cancelled: boolean, ms: number): void {
    const log = this.#options.log;
    if (log)
      logJobEnd(log, String(id), { status: state.status, counts: state.counts, ms, cancelled });
  }
}

/**
 * Ends every unfinished store of a cancelled job: its images still to do
 * `skipped`, the store `failed` with the error "cancelled". Yields now and
 * then, as a 100k-store job must not hold the event loop.
 */
async function cancelStores(input: JobInput, state: JobState): Promise<void> {
  const slice = createTimeSlice();
  for (const task of input.stores) {
    await slice.turn();
    if (state.isStoreFinished(task.index)) continue;
    for (let image = state.firstPending(task.index); image < task.urls.length; image++) {
      state.recordImage(task.index, image, {
        url: task.urls.at(image) ?? '',
        status: 'skipped',
      });
    }
    state.setStoreStatus(task.index, 'failed', CANCELLED);
  }
}

/** Longest a submit's parse holds the event loop at a time. */
const SUBMIT_SLICE_MS = 10;

function withCanonical(input: JobInput): {
  readonly input: JobInput;
  readonly canonical: readonly string[];
} {
  return { input, canonical: [canonicalManifest(input)] };
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
