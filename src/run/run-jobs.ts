import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { Controller, type PreparedJob } from '../engine/controller.js';
import { createDownloader } from '../download/downloader.js';
import { InputError, ManifestError } from '../utils/errors.js';
import { createStoreDeps, optionChanges, resultOptionsOf } from '../engine/job-setup.js';
import { JobState } from '../results/job-state.js';
import { readManifest } from '../input/manifest.js';
import { isWriterAlive, loadResults } from '../results/reader.js';
import { ResultsWriter, type SaveStats } from '../results/writer.js';
import type { Sleep } from '../utils/sleep.js';
import type { JobInput, ResultOptions, ResultsDocument, RunOptions } from '../types.js';

export type RunRequest = {
  /** Manifest paths; `-` reads standard input (once). */
  readonly manifests: readonly string[];
  /** Results file of a single job. */
  readonly out?: string | undefined;
  /** Folder for the results files of several jobs. */
  readonly outDir?: string | undefined;
  /** Overwrite existing results files. */
  readonly force?: boolean | undefined;
  /** Continue jobs from their existing results files. */
  readonly resume?: boolean | undefined;
  /** Path of a store master CSV. */
  readonly storeMasterPath?: string | undefined;
  readonly options: Omit<RunOptions, 'storeMaster'>;
  readonly stdin?: NodeJS.ReadableStream | undefined;
  /** Stops the run: new images are not started, results are saved. */
  readonly signal?: AbortSignal | undefined;
  /** Called once every job is prepared, before any download: for progress. */
  readonly onStart?: ((jobs: readonly RunningJob[]) => void) | undefined;
  /** Replaces the GPU sleep (tests, benchmarks). */
  readonly sleep?: Sleep | undefined;
};

export type RunningJob = {
  readonly input: JobInput;
  readonly state: JobState;
  readonly resultsPath: string;
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
export async function runJobs(request: RunRequest): Promise<JobReport[]> {
  const { options } = request;
  // Loaded on use: its CSV parser is start-up time most runs do not need.
  const storeMaster = request.storeMasterPath
    ? await (await import('../input/store-master.js')).readStoreMaster(request.storeMasterPath)
    : undefined;
  const inputs = await readManifests(request.manifests, request.stdin);
  const paths = resultsPaths(inputs, request);
  if (request.outDir) await mkdir(request.outDir, { recursive: true });
  const resultOptions = resultOptionsOf(options, storeMaster);
  const prepared = await Promise.all(
    inputs.map((input, index) => prepareJob(input, paths[index] ?? '', resultOptions, request)),
  );

  const downloader = createDownloader(options);
  const writers = prepared.map(
    (job) => new ResultsWriter(job.resultsPath, job.state, { continues: job.resumed }),
  );
  const signal = request.signal ?? new AbortController().signal;
  try {
    writers.forEach((writer) => {
      writer.open();
    });
    request.onStart?.(prepared);
    const controller = new Controller(
      options,
      createStoreDeps({
        fetchImage: (url, fetchSignal) => downloader.fetchImage(url, fetchSignal),
        gpuDelay: options.gpuDelay,
        seed: options.seed,
        storeMaster:
          storeMaster && request.storeMasterPath
            ? { ids: storeMaster, source: request.storeMasterPath }
            : undefined,
        sleep: request.sleep,
      }),
    );
    // Each job's file is final the moment that job ends, not when the run does.
    return await Promise.all(
      prepared.map(async (job, index): Promise<JobReport> => {
        const { interrupted } = await controller.submit(job, signal);
        const writer = writers[index];
        await writer?.close(interrupted);
        return {
          source: job.input.source,
          resultsPath: job.resultsPath,
          document: job.state.toDocument(interrupted ? { interrupted } : {}),
          interrupted,
          saves: writer?.stats ?? { saves: 0, savingMs: 0, journalMs: 0 },
        };
      }),
    );
  } finally {
    await downloader.close();
  }
}

async function readManifests(
  sources: readonly string[],
  stdin: NodeJS.ReadableStream | undefined,
): Promise<JobInput[]> {
  if (sources.filter((source) => source === '-').length > 1) {
    throw new InputError('E_USAGE', 'standard input (-) can be given only once');
  }
  const settled = await Promise.allSettled(sources.map((source) => readManifest(source, stdin)));
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

function resultsPaths(inputs: readonly JobInput[], request: RunRequest): string[] {
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
  request: RunRequest,
): Promise<PreparedJob & RunningJob & { readonly resumed: boolean }> {
  const folder = dirname(resultsPath);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new InputError('E_USAGE', `cannot write ${resultsPath}: no such folder ${folder}`);
  }
  const exists = existsSync(resultsPath);
  if (exists && request.resume) {
    const document = await loadResults(resultsPath);
    refuseLiveWriter(document, resultsPath);
    checkResumable(document, input, options, resultsPath);
    const state = JobState.fromDocument(document);
    state.reopenUnfinishedStores();
    return { input, resultsPath, state, resumed: true };
  }
  if (exists && request.force) refuseLiveWriter(readLeniently(resultsPath), resultsPath);
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
function refuseLiveWriter(document: ResultsDocument | undefined, path: string): void {
  if (document?.status === 'ongoing' && isWriterAlive(document)) {
    throw new InputError(
      'E_OUTPUT_EXISTS',
      `${path} is being written by a running imgjob (pid ${document.writer?.pid ?? '?'}); stop it first or choose another file with -o`,
    );
  }
}

// --force replaces whatever is there; only a live writer stops it.
function readLeniently(path: string): ResultsDocument | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
  } catch {
    return undefined;
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
