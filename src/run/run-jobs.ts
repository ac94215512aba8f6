import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { Controller, type PreparedJob } from '../engine/controller.js';
import { createDownloader, type Downloader, type NetworkView } from '../download/downloader.js';
import {
  describeFileError,
  InputError,
  ManifestError,
  QueueUnavailableError,
} from '../utils/errors.js';
import { resolveRunOptions } from '../engine/run-options.js';
import { createStoreDeps, optionChanges, resultOptionsOf } from '../engine/job-setup.js';
import { JobState } from '../results/job-state.js';
import { readManifest, type InputFormat } from '../input/manifest.js';
import { lockResults, type ResultsLock } from '../results/lock.js';
import { isWriterAlive, loadResults, readResultsHeader } from '../results/reader.js';
import { ResultsWriter, type SaveStats } from '../results/writer.js';
import { removeStaleTemps } from '../utils/atomic-file.js';
import { log } from '../log/process-log.js';
import { logJobEnd, logJobStart, logStoreEnd } from '../log/job-events.js';
import type { Sleep } from '../utils/sleep.js';
import type { checkQueue, QueueRunner } from '../queue/coordinator.js';
import type { Tallies } from '../metrics/tallies.js';

type QueueTarget = Awaited<ReturnType<typeof checkQueue>>;
import type {
  JobInput,
  NetworkSummary,
  ResolvedRunOptions,
  ResultOptions,
  ResultsDocument,
  RunOptions,
} from '../types.js';

export type RunRequest = {
  /** Manifest paths; `-` reads standard input (once). */
  readonly manifests: readonly string[];
  /** The manifests' form; by default from each one's extension. */
  readonly inputFormat?: InputFormat | undefined;
  /** Results file of a single job. */
  readonly out?: string | undefined;
  /** Folder for the results files of several jobs. */
  readonly outDir?: string | undefined;
  /** Overwrite existing results files. */
  readonly force?: boolean | undefined;
  /** Continue jobs from their existing results files. */
  readonly resume?: boolean | undefined;
  /**
   * With `resume`: also take up failed stores again from their failed image,
   * and stores fail-fast skipped; done results stay.
   */
  readonly retryFailed?: boolean | undefined;
  /** Path of a store master CSV. */
  readonly storeMasterPath?: string | undefined;
  /** What is left out takes its RUN_DEFAULTS value. */
  readonly options?: RunOptions | undefined;
  readonly stdin?: NodeJS.ReadableStream | undefined;
  /** Stops the run: new images are not started, results are saved. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Called once every job is prepared, before any download: for progress;
   * `network` tells the hosts paused and the slowest downloads at any time.
   */
  readonly onStart?:
    ((jobs: readonly RunningJob[], network: () => NetworkView) => void) | undefined;
  /** Replaces the GPU sleep (tests, benchmarks). */
  readonly sleep?: Sleep | undefined;
  /** Redis URL: run the stores on `imgjob worker` processes through the queue. */
  readonly queue?: string | undefined;
  /** Told what a user of the queue should know (no worker connected yet). */
  readonly onQueueNotice?: ((line: string) => void) | undefined;
  /** How long an unusable Redis is waited for before the run saves and ends (exit 75). */
  readonly queueWaitMs?: number | undefined;
  /** How long an unfinished job's keys stay in Redis for `--resume`. */
  readonly queueRetentionMs?: number | undefined;
  /** How long the queue is quiet before the coordinator says what it waits for. @default 30 s */
  readonly queueNoticeMs?: number | undefined;
  /** Counts downloads, results and saves for `--metrics-port`. */
  readonly metrics?: Tallies | undefined;
};

/** The request past `runJobs`' entry: every run option holds its value or default. */
type ResolvedRequest = RunRequest & { readonly options: ResolvedRunOptions };

export type RunningJob = {
  readonly input: JobInput;
  readonly state: JobState;
  readonly resultsPath: string;
  /** Taken up from an existing results file (`--resume`). */
  readonly resumed: boolean;
};

export type JobReport = {
  readonly source: string;
  readonly resultsPath: string;
  readonly document: ResultsDocument;
  /** The run was stopped by its signal before this job finished. */
  readonly interrupted: boolean;
  /** Snapshot saves and the time they took. */
  readonly saves: SaveStats;
};

/**
 * The programmatic front door: reads and checks every input before any
 * download (bad input throws an InputError and writes nothing), then runs all
 * jobs at once over one shared store limit and keeps their results files.
 */
export async function runJobs(given: RunRequest): Promise<JobReport[]> {
  const request: ResolvedRequest = { ...given, options: resolveRunOptions(given.options) };
  const { options } = request;
  // Loaded on use: its CSV parser is start-up time most runs do not need.
  const storeMaster = request.storeMasterPath
    ? await (await import('../input/store-master.js')).readStoreMaster(request.storeMasterPath)
    : undefined;
  const inputs = await readManifests(request.manifests, request.stdin, request.inputFormat);
  const paths = resultsPaths(inputs, request);
  // Checked before anything is written: an unusable queue is bad input (exit 2).
  // The queue's packages load only for a queued run: they weigh on start-up.
  const queueTarget = request.queue
    ? await (await import('../queue/coordinator.js')).checkQueue(request.queue)
    : undefined;
  if (request.outDir) await makeOutDir(request.outDir);
  const resultOptions = resultOptionsOf(options, storeMaster);
  const locks = lockAll(paths);
  try {
    const prepared = await allOrEveryProblem(
      inputs.map((input, index) => prepareJob(input, paths[index] ?? '', resultOptions, request)),
    );
    injectedInternalError();
    return await runPrepared(prepared, storeMaster, request, queueTarget);
  } finally {
    for (const lock of locks) lock.release();
  }
}

async function runPrepared(
  prepared: readonly (PreparedJob & RunningJob)[],
  storeMaster: ReadonlySet<string> | undefined,
  request: ResolvedRequest,
  queueTarget: QueueTarget | undefined,
): Promise<JobReport[]> {
  const { options } = request;
  // Stopped by the caller's signal, or by a results file that cannot be
  // written any more (a full disk): new images are not started, what was
  // done is saved as far as it can be.
  const stop = new AbortController();
  const forward = (): void => {
    stop.abort(request.signal?.reason);
  };
  if (request.signal?.aborted) forward();
  request.signal?.addEventListener('abort', forward, { once: true });
  const downloader = createDownloader(options);
  const network = (): NetworkSummary | undefined => networkSummary(downloader);
  const writers = prepared.map(
    (job) =>
      new ResultsWriter(job.resultsPath, job.state, {
        continues: job.resumed,
        queue: queueTarget?.safe,
        onFailure: (error) => {
          stop.abort(error);
        },
        onSave: request.metrics?.saved,
        network,
      }),
  );
  // A job stuck on slow downloads or paused hosts changes no image: its
  // file is refreshed anyway, so `status` names what it waits for.
  const refresh = setInterval(() => {
    const now = network();
    if (!now?.paused && !now?.slowest) return;
    for (const writer of writers) writer.refresh();
  }, NETWORK_REFRESH_MS);
  refresh.unref();
  let queue: QueueRunner | undefined;
  try {
    const master = storeMaster && { ids: storeMaster, source: request.storeMasterPath ?? '' };
    const onNotice = request.onQueueNotice;
    queue =
      queueTarget &&
      (await import('../queue/coordinator.js')).openQueueRunner(queueTarget, {
        ...options,
        storeMaster: master,
        onNotice,
        queueWaitMs: request.queueWaitMs,
        retentionMs: request.queueRetentionMs,
        waitingNoticeMs: request.queueNoticeMs,
        // Redis stayed unusable, or another coordinator holds a job: every
        // job stops and saves, then the run ends with the reason.
        onGiveUp: (error) => {
          stop.abort(error);
        },
        // A result leaves Redis only once this run's journal holds it.
        durable: async () => {
          await Promise.all(writers.map((writer) => writer.journaled()));
        },
      });
    for (const writer of writers) await writer.open();
    for (const job of prepared) {
      logJobStart(log, job.resumed ? 'resumed' : 'submitted', job.state.jobId, job.state.counts, {
        results_path: job.resultsPath,
      });
    }
    for (const job of prepared) job.state.startRun();
    request.onStart?.(prepared, () => downloader.network());
    const controller = new Controller(
      { ...options, onStoreEnd: logStoreOf },
      createStoreDeps({
        fetchImage: (url, fetchSignal) => downloader.fetchImage(url, fetchSignal),
        gpuDelay: options.gpuDelay,
        seed: options.seed,
        storeMaster:
          storeMaster && request.storeMasterPath
            ? { ids: storeMaster, source: request.storeMasterPath }
            : undefined,
        sleep: request.sleep,
        observer: request.metrics,
      }),
    );
    const failures: unknown[] = [];
    // Each job's file is final the moment that job ends, not when the run does.
    const reports = await Promise.all(
      prepared.map(async (job, index): Promise<JobReport> => {
        const started = performance.now();
        const { interrupted } = await (queue ?? controller).submit(job, stop.signal);
        const writer = writers[index];
        try {
          await writer?.close(interrupted);
        } catch (error) {
          failures.push(error);
        }
        const { status, counts } = job.state;
        logJobEnd(
          log,
          job.state.jobId,
          { status, counts, ms: performance.now() - started, interrupted },
          { results_path: job.resultsPath },
        );
        return {
          source: job.input.source,
          resultsPath: job.resultsPath,
          document: job.state.toDocument(interrupted ? { interrupted } : {}),
          interrupted,
          saves: writer?.stats ?? {
            saves: 0,
            savingMs: 0,
            journalMs: 0,
            journalWrites: 0,
            snapshotMs: 0,
            finalMs: 0,
          },
        };
      }),
    );
    // A results file that could not be saved ends the run with its reason:
    // the job's status would be a lie about what is on disk.
    if (failures.length > 0) throw failures[0];
    const reason: unknown = stop.signal.reason;
    if (reason instanceof QueueUnavailableError || reason instanceof InputError) throw reason;
    return reports;
  } finally {
    request.signal?.removeEventListener('abort', forward);
    clearInterval(refresh);
    await downloader.close();
    await queue?.close();
  }
}

/** How often a job's file is saved while downloads are slow or hosts paused. */
const NETWORK_REFRESH_MS = 1_000;

/** The results file's view of the downloads: nothing before the first request. */
function networkSummary(downloader: Downloader): NetworkSummary | undefined {
  const { hosts, paused, slowest } = downloader.network();
  if (hosts.length === 0) return undefined;
  return {
    hosts,
    ...(paused.total > 0 ? { paused } : {}),
    ...(slowest.length > 0 ? { slowest } : {}),
  };
}

/** `store_finished` of a store this run ran (for JSON lines: text hides info). */
function logStoreOf(state: JobState, store: number, ms: number | undefined): void {
  if (!log.wants('info')) return;
  const { store_id, status, error, images } = state.storeView(store);
  logStoreEnd(
    log,
    `${status.padEnd(12)} store ${store_id} (job ${state.jobId.slice(0, 8)}, ${images} images)`,
    { job_id: state.jobId, store_id, status, error, images, ms },
  );
}

/**
 * The locks of every results file, before anything is read or downloaded;
 * then the temp files dead runs left beside them go.
 */
function lockAll(paths: readonly string[]): ResultsLock[] {
  const locks: ResultsLock[] = [];
  try {
    for (const path of paths) {
      checkResultsPath(path);
      locks.push(lockResults(path));
      removeStaleTemps(path);
    }
  } catch (error) {
    for (const lock of locks) lock.release();
    throw error;
  }
  return locks;
}

function checkResultsPath(path: string): void {
  const folder = dirname(path);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new InputError('E_USAGE', `cannot write ${path}: no such folder ${folder}`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new InputError('E_USAGE', `cannot write ${path}: it is a folder, not a file`);
  }
}

async function makeOutDir(folder: string): Promise<void> {
  try {
    await mkdir(folder, { recursive: true });
  } catch (error) {
    throw new InputError(
      'E_USAGE',
      `cannot create the output folder ${folder}: ${describeFileError(error)}`,
      { cause: error },
    );
  }
}

/**
 * Test seam, documented in README "Durability": `IMGJOB_TEST_INTERNAL_ERROR=1`
 * throws a plain Error once the jobs are prepared, as a bug would, so a test
 * can see how the CLI reports one (exit 70, no stack unless asked).
 */
function injectedInternalError(): void {
  if (process.env.IMGJOB_TEST_INTERNAL_ERROR === '1') {
    throw new Error('injected internal error (IMGJOB_TEST_INTERNAL_ERROR=1)');
  }
}

// Every job's problem at once (three results files in the way: name all
// three), not only the first; anything but an InputError is a bug and wins.
async function allOrEveryProblem<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const errors = settled.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  const problems = errors.filter((error) => error instanceof InputError);
  if (problems.length < errors.length) throw errors.find((error) => !(error instanceof InputError));
  const first = problems[0];
  if (first) {
    throw new InputError(
      first.code,
      problems.flatMap((error) => error.problems),
    );
  }
  return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

/** Reads and checks every manifest, reporting every problem at once (`validate` shares it). */
export async function readManifests(
  sources: readonly string[],
  stdin: NodeJS.ReadableStream | undefined,
  format?: InputFormat,
): Promise<JobInput[]> {
  if (sources.filter((source) => source === '-').length > 1) {
    throw new InputError('E_USAGE', 'standard input (-) can be given only once');
  }
  const settled = await Promise.allSettled(
    sources.map((source) => readManifest(source, stdin, format)),
  );
  const problems = settled.flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  if (problems.length > 0) {
    // Report every bad manifest at once, each line naming its file; anything
    // else (a bug) still crashes.
    const lines = problems.flatMap((error) => {
      if (error instanceof ManifestError) {
        const name = error.source === '-' ? 'stdin' : error.source;
        return error.problems.map((line) => `${name}: ${line}`);
      }
      if (error instanceof InputError) return error.problems;
      throw error;
    });
    throw new ManifestError(sources.join(', '), lines);
  }
  return settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

function resultsPaths(inputs: readonly JobInput[], request: ResolvedRequest): string[] {
  if (request.out && inputs.length > 1) {
    throw new InputError(
      'E_USAGE',
      '-o/--out names the results file of ONE job; use --out-dir for several manifests',
    );
  }
  const paths = inputs.map((input) => {
    if (request.out) return resolve(request.out);
    const name =
      input.source === '-'
        ? 'results.json'
        : `${basename(input.source).replace(/\.json$/i, '')}.results.json`;
    if (request.outDir) return resolve(request.outDir, name);
    return input.source === '-' ? resolve(name) : join(dirname(resolve(input.source)), name);
  });
  const seen = new Map<string, string>();
  paths.forEach((path, index) => {
    const source = inputs[index]?.source ?? '';
    const other = seen.get(path);
    if (other !== undefined) {
      throw new InputError(
        'E_USAGE',
        `${other} and ${source} would both write ${path}; give them different names or folders`,
      );
    }
    seen.set(path, source);
  });
  return paths;
}

async function prepareJob(
  input: JobInput,
  resultsPath: string,
  options: ResultOptions,
  request: ResolvedRequest,
): Promise<PreparedJob & RunningJob> {
  const exists = existsSync(resultsPath);
  if (exists && request.resume) {
    const document = await loadResults(resultsPath);
    refuseLiveWriter(document, resultsPath);
    checkResumable(document, input, options, resultsPath);
    const state = JobState.fromDocument(document);
    state.reopenUnfinishedStores();
    if (request.retryFailed) state.reopenFailedStores();
    return { input, resultsPath, state, resumed: true };
  }
  if (exists && request.force) refuseLiveWriter(readResultsHeader(resultsPath), resultsPath);
  if (exists && !request.force) {
    throw new InputError(
      'E_OUTPUT_EXISTS',
      `${resultsPath} already exists: use --resume to continue that job or --force to overwrite it`,
    );
  }
  // Recorded absolute, so `status` can say how to resume from any folder.
  const source = input.source === '-' ? '-' : resolve(input.source);
  const state = JobState.create({ ...input, source }, randomUUID(), options, new Date());
  return { input, resultsPath, state, resumed: false };
}

// Two runs writing one results file would each clobber the other's work.
// --force replaces whatever is there; only a live writer stops it.
function refuseLiveWriter(
  document: Pick<Partial<ResultsDocument>, 'status' | 'writer'> | undefined,
  path: string,
): void {
  if (document?.status === 'ongoing' && isWriterAlive(document)) {
    throw new InputError(
      'E_OUTPUT_EXISTS',
      `${path} is being written by a running imgjob (pid ${document.writer?.pid ?? '?'}); stop it first or choose another file with -o`,
    );
  }
}

function checkResumable(
  document: ResultsDocument,
  input: JobInput,
  options: ResultOptions,
  path: string,
): void {
  if (document.manifest_digest !== input.digest) {
    throw new InputError(
      'E_RESUME_MISMATCH',
      `cannot resume ${path}: it belongs to a different manifest (${document.manifest_source}); use --force to start over or -o for another file`,
    );
  }
  const differences = optionChanges(document.options, options);
  if (differences.length > 0) {
    throw new InputError(
      'E_RESUME_MISMATCH',
      `cannot resume ${path} with different options (${differences.join('; ')}): give the same ones, or use --force to start over`,
    );
  }
}
