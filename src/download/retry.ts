/**
 * Retries of transient download failures (errors.ts says which are).
 *
 * Not undici's retry interceptor: it resumes a failed body with a Range
 * request (we want a fresh attempt under a fresh deadline), does not report
 * how many attempts it made (our error message names them), treats every
 * error without a status as a bare `RequestRetryError`, and backs off without
 * jitter. The loop is small enough to own.
 */
import { DownloadError, type ErrorCode } from '../utils/errors.js';
import { realSleep } from '../utils/sleep.js';
import { log } from '../log/process-log.js';
import { abortedError } from './errors.js';

export type RetryPolicy = {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** Backoff base: the n-th retry waits up to `baseMs * 2^(n-1)`. */
  readonly baseMs: number;
  /** Cap of one wait, Retry-After included. */
  readonly maxMs: number;
  /**
   * A 429/503's Retry-After is waited out by the host's pause (hosts.ts),
   * not here: the retry then takes the first turn when the pause is over.
   * @default false
   */
  readonly hostPaced?: boolean;
};

/**
 * Runs `attempt` until it succeeds, fails for good, or the retries run out.
 * Only DownloadErrors marked transient are retried; the final one says how
 * many attempts were made. An abort (also during a backoff wait) rejects with
 * an AbortedError at once. `retried` lists the codes of the attempts that
 * were retried (metrics count them); undefined when none was.
 */
export async function withRetries<T>(
  attempt: (attempts: number) => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  random: () => number = Math.random,
): Promise<{
  readonly value: T;
  readonly attempts: number;
  readonly retried: readonly ErrorCode[] | undefined;
}> {
  // Made only once a retry happens: most downloads need none.
  let retried: ErrorCode[] | undefined;
  for (let attempts = 1; ; attempts++) {
    try {
      return { value: await attempt(attempts), attempts, retried };
    } catch (error) {
      // Anything but a DownloadError is an abort or a bug: neither is retried.
      if (!(error instanceof DownloadError)) throw error;
      if (!error.transient || attempts > policy.retries) {
        throw error.withAttempts(attempts, retried);
      }
      (retried ??= []).push(error.code);
      if (policy.hostPaced && pausesHost(error)) {
        logRetry(error, attempts, undefined);
        continue;
      }
      const wait = backoffMs(attempts, error.retryAfterMs, policy, random);
      logRetry(error, attempts, wait);
      await backoff(wait, signal);
    }
  }
}

/** `retry`: one line per retried attempt (info: JSON lines and the worker's text show it). */
function logRetry(error: DownloadError, attempts: number, waitMs: number | undefined): void {
  if (!log.wants('info')) return;
  const after =
    waitMs === undefined ? 'when its host takes requests again' : `in ${Math.round(waitMs)} ms`;
  log.event('retry', `retry ${attempts} of ${error.url} ${after}: ${error.message}`, {
    url: error.url,
    attempt: attempts,
    code: error.code,
    status: error.status,
    wait_ms: waitMs === undefined ? undefined : Math.round(waitMs),
  });
}

/** A 429 or 503 with Retry-After: the host's pause, not one request's. */
export function pausesHost(error: DownloadError): boolean {
  return (error.status === 429 || error.status === 503) && error.retryAfterMs !== undefined;
}

/**
 * Wait before retry number `retry` (1-based): the server's Retry-After when
 * it gave one, else exponential backoff with full jitter (spreads the retries
 * of many stores hitting one host), both capped by `maxMs`.
 */
export function backoffMs(
  retry: number,
  retryAfterMs: number | undefined,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxMs);
  return random() * Math.min(policy.maxMs, policy.baseMs * 2 ** (retry - 1));
}

/** The backoff wait: an abortable sleep, its abort named as a download's. */
async function backoff(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await realSleep(ms, signal);
  } catch (error) {
    throw signal?.aborted ? abortedError(signal) : error;
  }
}
