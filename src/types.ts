/**
 * The shared data shapes of imgjob: the manifest that comes in, the options
 * that steer a run, and the results document that goes to disk.
 *
 * What goes to disk is plain JSON data (no class instances), so the same
 * shapes serve the results file, `imgjob status` and the programmatic API.
 */

// ---------------------------------------------------------------- manifest

/** One visit of the Retail Pulse job payload. */
export type Visit = {
  readonly store_id: string;
  readonly image_url: readonly string[];
  readonly visit_time?: string | undefined;
};

/** The Retail Pulse job payload, as validated. */
export type Manifest = {
  readonly count: number;
  readonly visits: readonly Visit[];
};

/**
 * A store's image URLs in the order they must be processed: an array, or
 * (a parsed manifest's) a compact list that makes each string when asked.
 */
export type ImageUrls = {
  readonly length: number;
  at(index: number): string | undefined;
  [Symbol.iterator](): Iterator<string>;
};

/**
 * All visits of one `store_id`, merged in manifest order. This is the unit of
 * work a store pipeline takes: self-contained, so it can be shipped to a
 * remote worker as is (as JSON, its URLs are an array).
 */
export type StoreTask = {
  readonly storeId: string;
  /** Position of the store in its job (first appearance in the manifest). */
  readonly index: number;
  readonly visitTimes: readonly string[];
  readonly urls: ImageUrls;
};

/** One visit as a job keeps it: its images are the next `images` of its store's. */
export type VisitSpan = {
  /** Index of the store in `JobInput.stores`. */
  readonly store: number;
  readonly images: number;
  readonly time?: string;
};

/** A validated manifest, grouped into stores, with where it came from. */
export type JobInput = {
  /** File path of the manifest, or `-` for stdin. */
  readonly source: string;
  readonly stores: readonly StoreTask[];
  /** The visits in manifest order (`canonicalManifest` spells them as the Retail Pulse JSON). */
  readonly visits: readonly VisitSpan[];
  /** sha256 of the canonical manifest JSON: ties a results file to its manifest. */
  readonly digest: string;
  readonly imageCount: number;
};

// ---------------------------------------------------------------- results

export type ImageStatus = 'pending' | 'done' | 'failed' | 'skipped';
export type StoreStatus = 'pending' | 'ongoing' | 'completed' | 'failed' | 'skipped';
export type JobStatus = 'ongoing' | 'completed' | 'failed';

/** Measured facts about one downloaded image. */
export type Measurement = {
  readonly width: number;
  readonly height: number;
  /** Format as image-size names it: `jpg`, `png`, `webp`, … */
  readonly type: string;
  /** Bytes read from the network for this image (all attempts' final one). */
  readonly bytes: number;
  /** Download attempts made (1 = no retry). */
  readonly attempts: number;
  /** Codes of the attempts that were retried, when any was (metrics; not recorded). */
  readonly retried?: readonly string[];
};

/** An image result as recorded: a discriminated union on `status`. */
export type ImageResult =
  | { readonly url: string; readonly status: 'pending' }
  | { readonly url: string; readonly status: 'skipped' }
  | {
      readonly url: string;
      readonly status: 'done';
      readonly width: number;
      readonly height: number;
      readonly perimeter: number;
      readonly type: string;
      readonly bytes: number;
      readonly attempts: number;
      /** Simulated GPU time this image was given. */
      readonly gpu_ms: number;
      /** Wall time of the download and measurement. */
      readonly download_ms: number;
    }
  | {
      readonly url: string;
      readonly status: 'failed';
      readonly error: string;
      /** Stable error code, see `ErrorCode`. */
      readonly code: string;
      readonly attempts?: number;
    };

export type StoreError = { readonly store_id: string; readonly error: string };

export type StoreResult = {
  readonly store_id: string;
  readonly status: StoreStatus;
  readonly error?: string;
  readonly visit_times?: readonly string[];
  readonly images: readonly ImageResult[];
};

export type Counts = {
  readonly stores: number;
  readonly images: number;
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
  readonly pending: number;
};

/** The results file: one per job. */
export type ResultsDocument = {
  readonly schema_version: 1;
  readonly tool: 'imgjob';
  readonly job_id: string;
  readonly status: JobStatus;
  readonly error?: readonly StoreError[];
  /** sha256 of the manifest; `--resume` refuses a file whose digest differs. */
  readonly manifest_digest: string;
  readonly manifest_source: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly finished_at?: string;
  /** The run that last wrote the file, while it runs: lets `status` tell running from killed. */
  readonly writer?: { readonly pid: number; readonly host: string };
  /** The last run's `--queue` Redis, credentials hidden: resume hints keep it. */
  readonly queue?: string;
  /** True when the last run was stopped by a signal before the job finished. */
  readonly interrupted?: boolean;
  /** The hosts of the run's downloads (absent with `--queue`: the workers download). */
  readonly network?: NetworkSummary;
  /** The options that change results; `--resume` refuses different ones. */
  readonly options: ResultOptions;
  readonly counts: Counts;
  /**
   * Progress over time, one list per run (a resume starts the next): about a
   * sample a second, thinned as a run grows long. Durations and rates are
   * over the runs only, so the idle time before a resume does not count.
   */
  readonly timeline?: readonly (readonly ProgressSample[])[];
  readonly stores: readonly StoreResult[];
};

/** `[epoch ms, images done or failed so far]`: one point of a job's progress. */
export type ProgressSample = readonly [number, number];

/** One host's counts in the results file: requests sent, 429 and 503 answers. */
export type HostCounts = {
  readonly host: string;
  readonly requests: number;
  readonly status_429: number;
  readonly status_503: number;
};

/** Hosts paused by a Retry-After right now, by the status that paused them (`"429"`). */
export type PausedHosts = { readonly total: number; readonly by_status: Record<string, number> };

/** A download in flight for 5 s or more. */
export type SlowDownload = {
  readonly url: string;
  /** Seconds since its attempt started. */
  readonly seconds: number;
  /** Bytes its attempt has received. */
  readonly bytes: number;
};

/** What the run's downloads met, in the results file. */
export type NetworkSummary = {
  /** The 20 hosts with the most requests. */
  readonly hosts: readonly HostCounts[];
  /** While the job runs: the hosts paused now. */
  readonly paused?: PausedHosts;
  /** While the job runs: the slowest downloads in flight, slowest first. */
  readonly slowest?: readonly SlowDownload[];
};

/** The run options that change what a job records. */
export type ResultOptions = {
  /** `--gpu-delay` as given: `0`, `250` or `100-400`. */
  readonly gpu_delay: string;
  readonly seed: number | null;
  readonly header_only: boolean;
  readonly max_bytes: number;
  /** sha256 of the store master's ids, or null without one. */
  readonly store_master: string | null;
};

/** The status document of the Retail Pulse API. */
export type StatusDocument = {
  readonly status: JobStatus;
  readonly job_id: string;
  readonly error?: readonly StoreError[];
};

// ---------------------------------------------------------------- options

/** curl's low-speed limit: slower than this for this long aborts the attempt. */
export type SpeedLimit = { readonly bytesPerSecond: number; readonly seconds: number };

/** The proxies of the downloads, as undici's EnvHttpProxyAgent takes them; `undefined`: none for that scheme. */
export type ProxySettings = {
  readonly httpProxy: string | undefined;
  readonly httpsProxy: string | undefined;
  /** Hosts (`example.com`, `.example.com`, `host:port`, `*`) reached directly. */
  readonly noProxy: string;
};

/** GPU delay: a fixed time, or a uniform range, in milliseconds. */
export type GpuDelay = { readonly min: number; readonly max: number };

/**
 * Limits and policy of one download. Each may be left out: the library fills
 * in the default named here (`DOWNLOAD_DEFAULTS`), as the command line does.
 */
export type DownloadOptions = {
  /**
   * Deadline of one whole attempt: connect, headers and body together.
   * @default 30_000
   */
  readonly timeoutMs?: number | undefined;
  /**
   * Largest image accepted, in bytes; an image of exactly this size is accepted.
   * @default 50 MiB
   */
  readonly maxBytes?: number | undefined;
  /**
   * Retries of a transient failure (network error, timeout, 408, 429, 5xx).
   * @default 3
   */
  readonly retries?: number | undefined;
  /**
   * Read only the bytes the dimensions need (a Range request first).
   * @default false
   */
  readonly headerOnly?: boolean | undefined;
  /**
   * Most connections open to one host at once.
   * @default 16
   */
  readonly perHost?: number | undefined;
  /**
   * Threads for downloads and measuring; `1` keeps them on the main thread.
   * The command line's default is one per core.
   * @default 1
   */
  readonly threads?: number | undefined;
  /**
   * Backoff base of the download retries: retry n waits a random time up to
   * `retryBaseMs * 2^(n-1)`, each wait capped at 30 s.
   * @default 250
   */
  readonly retryBaseMs?: number | undefined;
  /** The proxy of every download (`proxySettings()` reads flags and environment). @default none */
  readonly proxy?: ProxySettings | undefined;
  /** curl's low-speed limit: an attempt slower than this for this long is retried. @default none */
  readonly speedLimit?: SpeedLimit | undefined;
};

/**
 * Options of a run, shared by every job of it. Each may be left out: the
 * library fills in the default named here (`RUN_DEFAULTS`), the same one the
 * command line's `--help` shows.
 */
export type RunOptions = DownloadOptions & {
  /**
   * Most stores in flight at once, over all jobs.
   * @default 32
   */
  readonly concurrency?: number | undefined;
  /** @default { min: 100, max: 400 } */
  readonly gpuDelay?: GpuDelay | undefined;
  /** Makes the GPU delays reproducible. @default none: Math.random() */
  readonly seed?: number | undefined;
  /**
   * Stop a job at its first failed store.
   * @default false
   */
  readonly failFast?: boolean | undefined;
};

/** RunOptions past the library's entry: every option that has a default holds it. */
export type ResolvedRunOptions = RunOptions & {
  readonly [K in Exclude<keyof RunOptions, 'seed' | 'proxy' | 'speedLimit'>]-?: Exclude<
    RunOptions[K],
    undefined
  >;
};
