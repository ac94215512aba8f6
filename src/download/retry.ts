/**
 * Retries of transient download failures, and the errors that say whether a
 * failure is transient.
 *
 * Not undici's retry interceptor: it resumes a failed body with a Range
 * request (we want a fresh attempt under a fresh deadline), does not report
 * how many attempts it made (our error message names them), treats every
 * error without a status as a bare `RequestRetryError`, and backs off without
 * jitter. The loop is small enough to own.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

import { AbortedError, DownloadError, describeError } from '../utils/errors.js';
import { realSleep } from '../utils/sleep.js';

export type RetryPolicy = {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** Backoff base: the n-th retry waits up to `baseMs * 2^(n-1)`. */
  readonly baseMs: number;
  /** Cap of one wait, Retry-After included. */
  readonly maxMs: number;
};

/**
 * Runs `attempt` until it succeeds, fails for good, or the retries run out.
 * Only DownloadErrors marked transient are retried; the final one says how
 * many attempts were made. An abort (also during a backoff wait) rejects with
 * an AbortedError at once.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  random: () => number = Math.random,
): Promise<{ readonly value: T; readonly attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    try {
      return { value: await attempt(), attempts };
    } catch (error) {
      // Anything but a DownloadError is an abort or a bug: neither is retried.
      if (!(error instanceof DownloadError)) throw error;
      if (!error.transient || attempts > policy.retries) throw error.withAttempts(attempts);
      await backoff(backoffMs(attempts, error.retryAfterMs, policy, random), signal);
    }
  }
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

/** Retry-After as milliseconds from now: delay-seconds or an HTTP-date. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  now: number = Date.now(),
): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The backoff wait: an abortable sleep, its abort named as a download's. */
async function backoff(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await realSleep(ms, signal);
  } catch (error) {
    throw signal?.aborted ? abortedError(signal) : error;
  }
}

export function abortedError(signal: AbortSignal): AbortedError {
  return new AbortedError('download stopped before it finished', { cause: signal.reason });
}

/** A final response that is not 2xx: 408, 429 and 5xx are transient. */
export function statusError(
  url: string,
  status: number,
  statusText: string,
  headers: IncomingHttpHeaders,
): DownloadError {
  const transient = status === 408 || status === 429 || status >= 500;
  const text = statusText || STATUS_CODES[status] || '';
  return new DownloadError('E_HTTP_STATUS', `HTTP ${status} ${text}`.trim(), {
    url,
    status,
    transient,
    retryAfterMs: transient ? parseRetryAfter(headers['retry-after']) : undefined,
  });
}

/**
 * A socket-level failure: refused, reset, DNS… are transient; a TLS
 * certificate that does not verify, or a downloader already closed, will not
 * get better by trying again.
 */
export function networkError(url: string, error: unknown, what = 'network error'): DownloadError {
  const code = errorCode(error) ?? '';
  const detail = code && !describeError(error).includes(code) ? ` (${code})` : '';
  return new DownloadError(
    'E_NETWORK',
    `${what}: ${describeError(error)}${detail}`,
    { url, transient: !PERMANENT_CODE.test(code) },
    { cause: error },
  );
}

const PERMANENT_CODE = /CERT|SSL|TLS|^UND_ERR_(DESTROYED|CLOSED)$/;
/** Codes of mistakes in the call, not of the network: those stay bugs. */
const PROGRAMMER_CODE = /^(UND_ERR_INVALID_ARG|UND_ERR_NOT_SUPPORTED|ERR_INVALID_\w+)$/;
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether `error` came from the network stack (a Node system error or an
 * undici error, both of which carry a string `code`) rather than from a bug.
 */
export function isNetworkError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && !PROGRAMMER_CODE.test(code);
}

/** Whether one of undici's own timers (connect, headers, body) ended the request. */
export function isUndiciTimeout(error: unknown): boolean {
  const cause = error instanceof DownloadError ? error.cause : error;
  return TIMEOUT_CODES.has(errorCode(cause) ?? '');
}

export function errorCode(error: unknown): string | undefined {
  if (!(error instanceof Error) || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}
