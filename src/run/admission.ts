/**
 * Admission: every input read and checked before any download. Bad input
 * throws an InputError naming every problem at once and writes nothing; what
 * passes is locked (one writer per results file) and prepared as jobs, new
 * or taken up from their results files.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import type { PreparedJob } from '../engine/controller.js';
import { optionChanges, resultOptionsOf, type StoreMaster } from '../engine/job-setup.js';
import { readManifest, type InputFormat } from '../input/manifest.js';
import type { checkQueue } from '../queue/coordinator.js';
import { JobState } from '../results/job-state.js';
import { lockResults, type ResultsLock } from '../results/lock.js';
import { isWriterAlive, readResultsHeader } from '../results/reader.js';
import { ResultsStream, type ResultsHead } from '../results/results-stream.js';
import type { JobInput, ResultOptions, ResultsDocument } from '../types.js';
import { removeStaleTemps } from '../utils/atomic-file.js';
import { describeFileError, InputError, ManifestError } from '../utils/errors.js';
import type { ResolvedRequest, RunningJob } from './request.js';

export type QueueTarget = Awaited<ReturnType<typeof checkQueue>>;

/** The jobs that passed, locked and ready to run. */
export type Admitted = {
  readonly jobs: readonly (PreparedJob & RunningJob)[];
  readonly storeMaster: StoreMaster | undefined;
  /** The checked queue of a `--queue` run. */
  readonly queueTarget: QueueTarget | undefined;
  /** Lets the results files go (once the run is over). */
  release(): void;
};

/**
 * Reads the store master and the manifests, checks the results files and the
 * queue, then locks and prepares every job; nothing is written before all of
 * it passed.
 */
export async function admitJobs(request: ResolvedRequest): Promise<Admitted> {
  // Loaded on use: its CSV parser is start-up time most runs do not need.
  const ids = request.storeMasterPath
    ? await (await import('../input/store-master.js')).readStoreMaster(request.storeMasterPath)
    : undefined;
  const storeMaster = ids && { ids, source: request.storeMasterPath ?? '' };
  const inputs = await readManifests(request.manifests, request.stdin, request.inputFormat);
  const paths = resultsPaths(inputs, request);
  // Checked before anything is written: an unusable queue is bad input (exit 2).
  // The queue's packages load only for a queued run: they weigh on start-up.
  const queueTarget = request.queue
    ? await (await import('../queue/coordinator.js')).checkQueue(request.queue)
    : undefined;
  if (request.outDir) await makeOutDir(request.outDir);
  const resultOptions = resultOptionsOf(request.options, ids);
  const locks = lockAll(paths);
  const release = (): void => {
    for (const lock of locks) lock.release();
  };
  try {
    const jobs = await allOrEveryProblem(
      inputs.map((input, index) => prepareJob(input, paths[index] ?? '', resultOptions, request)),
    );
    return { jobs, storeMaster, queueTarget, release };
  } catch (error) {
    release();
    throw error;
  }
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
    // Store by store: a 10M-image job's document would not fit in memory.
    const stream = await ResultsStream.open(resultsPath);
    let state: JobState;
    try {
      refuseLiveWriter(stream.head, resultsPath);
      checkResumable(stream.head, input, options, resultsPath);
      state = await JobState.fromStream(stream, input);
    } finally {
      await stream.close();
    }
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
  document: ResultsHead,
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
