import type { NetworkView } from '../download/downloader.js';
import type { InputFormat } from '../input/manifest.js';
import type { Tallies } from '../metrics/tallies.js';
import type { JobState } from '../results/job-state.js';
import type { JobSummary } from '../results/results-stream.js';
import type { SaveStats } from '../results/writer.js';
import type { JobInput, ResolvedRunOptions, ResultsDocument, RunOptions } from '../types.js';
import type { Sleep } from '../utils/sleep.js';

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
export type ResolvedRequest = RunRequest & { readonly options: ResolvedRunOptions };

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
  /**
   * The job's whole results as objects, built when first read: a job of a
   * million images is ~140 MB of them, which the command line never needs.
   */
  readonly document: ResultsDocument;
  /** The job with each store's images counted, not held: what the command line prints. */
  readonly summary: JobSummary;
  /** Bytes downloaded for the job's done images, over all its runs. */
  readonly bytesDone: number;
  /** The run was stopped by its signal before this job finished. */
  readonly interrupted: boolean;
  /** Snapshot saves and the time they took. */
  readonly saves: SaveStats;
};
