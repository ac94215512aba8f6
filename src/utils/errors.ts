/**
 * Every failure a user can cause or meet has a class here with a stable
 * `code`. Expected failures travel as data (an image result, a store result);
 * only the CLI entry turns an error into an exit code.
 */
import { plural } from './plural.js';

export type ErrorCode =
  // Bad input or usage: exit 2.
  | 'E_USAGE'
  | 'E_MANIFEST'
  | 'E_STORE_MASTER'
  | 'E_RESULTS_FILE'
  | 'E_RESUME_MISMATCH'
  | 'E_OUTPUT_EXISTS'
  // --queue: Redis unreachable, misconfigured or a bad URL.
  | 'E_QUEUE'
  // --queue: Redis stayed unusable past --queue-wait (exit 75).
  | 'E_QUEUE_UNAVAILABLE'
  // One image failed.
  | 'E_HTTP_STATUS'
  | 'E_NETWORK'
  | 'E_TIMEOUT'
  | 'E_TOO_LARGE'
  | 'E_TRUNCATED'
  | 'E_NOT_IMAGE'
  | 'E_REDIRECT'
  | 'E_BAD_URL'
  // The response breaks HTTP (a malformed Content-Length, say).
  | 'E_PROTOCOL'
  // The download thread died with the image in flight.
  | 'E_THREAD'
  // serve: the address an image URL leads to is not allowed.
  | 'E_ADDRESS_REFUSED'
  // The run was stopped.
  | 'E_ABORTED'
  // serve: the database is not imgjob's, is damaged or cannot be written (exit 2).
  | 'E_DATABASE'
  // serve: the database's disk takes no writes now (answered 503).
  | 'E_STORAGE_UNAVAILABLE'
  // serve: a request body or a submitted job over its limit (answered 413).
  | 'E_BODY_TOO_LARGE'
  | 'E_JOB_TOO_LARGE'
  // serve: a submission after shutdown began (answered 503).
  | 'E_SHUTTING_DOWN'
  // serve: the client went away before its request was read (nobody to answer).
  | 'E_CLIENT_GONE';

export class ImgjobError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Something the user gave us is wrong; the run must not start. Exit code 2. */
export class InputError extends ImgjobError {
  /** One line per problem, each naming its place. */
  readonly problems: readonly string[];

  constructor(code: ErrorCode, problems: readonly string[] | string, options?: ErrorOptions) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(code, list.join('\n'), options);
    this.problems = list;
  }
}

/**
 * The queue's Redis stayed unusable (unreachable, or answering OOM, READONLY…)
 * past `--queue-wait`. The results were saved first: running the same
 * command with `--resume` continues. Exit code 75 (sysexits' EX_TEMPFAIL).
 */
export class QueueUnavailableError extends ImgjobError {
  constructor(message: string) {
    super('E_QUEUE_UNAVAILABLE', message);
  }
}

/** The manifest breaks a rule. `problems` holds one `place: what` line each. */
export class ManifestError extends InputError {
  readonly source: string;

  constructor(source: string, problems: readonly string[], options?: ErrorOptions) {
    super('E_MANIFEST', problems, options);
    this.source = source;
  }
}

/** Context of a failed download, for messages and retry decisions. */
export type DownloadErrorContext = {
  readonly url: string;
  /** HTTP status, when a response came. */
  readonly status?: number | undefined;
  /** Attempts made before giving up. */
  readonly attempts?: number | undefined;
  /** Whether another attempt could succeed (network, timeout, 408, 429, 5xx). */
  readonly transient?: boolean | undefined;
  /** Milliseconds the server asked us to wait (Retry-After), when it said so. */
  readonly retryAfterMs?: number | undefined;
  /** Codes of the earlier attempts that were retried, in order (for metrics). */
  readonly retried?: readonly ErrorCode[] | undefined;
};

/** One image could not be downloaded or measured. */
export class DownloadError extends ImgjobError {
  readonly url: string;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;
  readonly retried: readonly ErrorCode[] | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    context: DownloadErrorContext,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.url = context.url;
    this.status = context.status;
    this.attempts = context.attempts ?? 1;
    this.transient = context.transient ?? false;
    this.retryAfterMs = context.retryAfterMs;
    this.retried = context.retried;
  }

  /** Its context as plain data: for a copy that changes one field, or for `postMessage`. */
  get context(): DownloadErrorContext {
    const { url, status, attempts, transient, retryAfterMs, retried } = this;
    return { url, status, attempts, transient, retryAfterMs, retried };
  }

  /**
   * The same error, told of the image URL: a connector's refusal knows only
   * the host it was asked to reach, while a download's error names its URL.
   */
  forUrl(url: string): DownloadError {
    return new DownloadError(this.code, this.message, { ...this.context, url }, { cause: this });
  }

  /**
   * The same error, after `attempts` tries (the earlier ones failed with the
   * `retried` codes); the message says how many.
   */
  withAttempts(attempts: number, retried?: readonly ErrorCode[]): DownloadError {
    const suffix = attempts > 1 ? ` (after ${attempts} attempts)` : '';
    return new DownloadError(
      this.code,
      `${this.message}${suffix}`,
      { ...this.context, attempts, retried },
      { cause: this.cause },
    );
  }
}

/** The run was stopped (SIGINT/SIGTERM) before this work finished. */
export class AbortedError extends ImgjobError {
  constructor(message = 'stopped before it finished', options?: ErrorOptions) {
    super('E_ABORTED', message, options);
  }
}

export function isAbortError(error: unknown): boolean {
  return (
    error instanceof AbortedError ||
    (error instanceof Error &&
      (error.name === 'AbortError' || error.name === 'RequestAbortedError'))
  );
}

/** A one-line description of any thrown value, for messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

/** Why a file could not be read, in words: `no such file`, `permission denied`. */
export function describeFileError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'it is a folder, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return describeError(error);
}

/** The first `max` problems, then one line that counts the rest. */
export function limitProblems(problems: readonly string[], max = 20): string[] {
  if (problems.length <= max) return [...problems];
  const rest = problems.length - max;
  return [...problems.slice(0, max), `… and ${plural(rest, 'more problem')}`];
}
