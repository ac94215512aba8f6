/**
 * Every error a download ends with is built here: one DownloadError per
 * failure kind, with a stable code, the caller's URL and whether another
 * attempt could succeed. Anything that is not a DownloadError when it leaves
 * the download layer is an abort (AbortedError) or a bug.
 *
 * Errors also cross between threads here: `toErrorData()` flattens one to a
 * structured-cloneable object, `fromErrorData()` builds it again.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';

import {
  AbortedError,
  DownloadError,
  describeError,
  type DownloadErrorContext,
  type ErrorCode,
} from '../utils/errors.js';

/** What every error of one download names. */
type Source = { readonly url: string; readonly maxBytes?: number };

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

export function timeoutError(url: string, timeoutMs: number, cause: unknown): DownloadError {
  return new DownloadError(
    'E_TIMEOUT',
    `timed out after ${timeoutMs} ms`,
    { url, transient: true },
    { cause },
  );
}

/** curl's low-speed limit stopped the attempt: transient, like a timeout. */
export function tooSlowError(
  url: string,
  limit: { readonly bytesPerSecond: number; readonly seconds: number },
  cause: unknown,
): DownloadError {
  return new DownloadError(
    'E_TIMEOUT',
    `slower than ${limit.bytesPerSecond} bytes/s for ${limit.seconds} s`,
    { url, transient: true },
    { cause },
  );
}

export function truncated(
  source: Source,
  received: number,
  expected: number,
  cause: unknown,
): DownloadError {
  return new DownloadError(
    'E_TRUNCATED',
    `body ended after ${received} of ${expected} bytes`,
    { url: source.url, transient: true },
    cause === undefined ? undefined : { cause },
  );
}

export function tooLarge(source: Source, detail: string): DownloadError {
  return new DownloadError(
    'E_TOO_LARGE',
    `image over the limit of ${source.maxBytes ?? 0} bytes (${detail})`,
    { url: source.url },
  );
}

/**
 * The failure of a request, as what it is: an error imgjob built already (a
 * connector's refusal, say) stays as it is; a socket-level failure is
 * `E_NETWORK`; a response that breaks HTTP (`Content-Length: -1`, a bad
 * status line) is `E_PROTOCOL`; anything else is a bug and is returned as is.
 */
export function requestError(url: string, error: unknown, what?: string): unknown {
  if (error instanceof DownloadError) return error.url === url ? error : error.forUrl(url);
  if (isProxyRefusal(error)) return proxyRefused(url, error);
  if (isProtocolError(error)) return protocolError(url, error);
  if (isNetworkError(error)) return networkError(url, error, what);
  return error;
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

/**
 * The proxy said no: undici reports a plain http proxy's 407 as an
 * InvalidArgumentError (a programmer's error by its code) and a CONNECT
 * that is not answered 200 as an abort, each with a message that starts
 * "Proxy". Not transient: the proxy's rules do not change between attempts.
 */
export function proxyRefused(url: string, error: Error): DownloadError {
  return new DownloadError(
    'E_NETWORK',
    `the proxy refused the request: ${error.message}`,
    { url, transient: false },
    { cause: error },
  );
}

function isProxyRefusal(error: unknown): error is Error {
  return (
    error instanceof Error && /^Proxy (Authentication Required|response \()/.test(error.message)
  );
}

/**
 * A response that does not follow HTTP. Transient like a lost connection: a
 * server or proxy mid-restart sends such things, and the next attempt
 * may well get a good answer.
 */
export function protocolError(url: string, error: unknown): DownloadError {
  return new DownloadError(
    'E_PROTOCOL',
    `malformed response: ${describeError(error)}`,
    { url, transient: true },
    { cause: error },
  );
}

/** The URL (asked for, or a redirect's Location) is not one imgjob fetches. */
export function badUrl(url: string, detail: string, cause?: unknown): DownloadError {
  return new DownloadError(
    'E_BAD_URL',
    detail,
    { url },
    cause === undefined ? undefined : { cause },
  );
}

/** A redirect chain imgjob will not follow further: a loop, or too many hops. */
export function redirectError(url: string, detail: string): DownloadError {
  return new DownloadError('E_REDIRECT', detail, { url });
}

/** The body is no image whose size can be read from its head. */
export function notImage(url: string, detail: string): DownloadError {
  return new DownloadError('E_NOT_IMAGE', detail, { url });
}

/** A 206 answer to a Range request whose Content-Range cannot be used. */
export function badContentRange(url: string, value: unknown): DownloadError {
  return new DownloadError(
    'E_HTTP_STATUS',
    `HTTP 206 with an unusable Content-Range: ${String(value)}`,
    { url, status: 206 },
  );
}

/** A download thread died with the image in flight (see src/threads/). */
export function threadCrashed(url: string, detail: string): DownloadError {
  return new DownloadError('E_THREAD', `download thread crashed: ${detail}`, { url });
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

/** undici's HTTP parser refused the response (it sets no `code` on these). */
function isProtocolError(error: unknown): boolean {
  return error instanceof Error && error.name === 'HTTPParserError';
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

// ---------------------------------------------------------------- between threads

/** An error flattened for `postMessage`: what the image's result needs of it. */
export type ErrorData =
  | {
      readonly kind: 'download';
      readonly code: ErrorCode;
      readonly message: string;
      readonly context: DownloadErrorContext;
    }
  | { readonly kind: 'aborted'; readonly message: string }
  | { readonly kind: 'bug'; readonly message: string; readonly stack: string | undefined };

export function toErrorData(error: unknown): ErrorData {
  if (error instanceof DownloadError) {
    const { code, message, context } = error;
    return { kind: 'download', code, message, context };
  }
  if (error instanceof AbortedError) return { kind: 'aborted', message: error.message };
  return {
    kind: 'bug',
    message: describeError(error),
    stack: error instanceof Error ? error.stack : undefined,
  };
}

export function fromErrorData(data: ErrorData): Error {
  switch (data.kind) {
    case 'download': {
      return new DownloadError(data.code, data.message, data.context);
    }
    case 'aborted':
      return new AbortedError(data.message);
    default: {
      const error = new Error(data.message);
      if (data.stack) error.stack = data.stack;
      return error;
    }
  }
}
