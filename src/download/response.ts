/**
 * What a response's head says, read the same way for every request: where a
 * redirect leads (and when to stop following), whether the size or status
 * rules the body out, and the errors a body that goes wrong makes.
 */
import type { IncomingHttpHeaders } from 'node:http';

import { DownloadError } from '../utils/errors.js';
import type { AttemptContext } from './get-handler.js';
import {
  badUrl,
  errorCode,
  isNetworkError,
  networkError,
  redirectError,
  requestError,
  statusError,
  tooLarge,
  truncated,
} from './errors.js';

/** An http(s) URL, parsed: what a request needs of it. */
export type Target = {
  readonly href: string;
  readonly origin: string;
  /** `hostname:port` (the port when not the scheme's default): what host state is kept by. */
  readonly host: string;
  readonly path: string;
};

export type ResponseHead = {
  /** Where the response came from, after redirects. */
  readonly url: Target;
  readonly statusCode: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
};

/**
 * What to do with the body of the final response, decided from its head
 * (throwing instead fails the request and drops the body):
 * - `{ limit, onChunk }`: each chunk in order; past `limit` bytes the body is
 *   too large; `onChunk` returns false to stop early (the rest is dropped,
 *   which closes that connection). Shorter than its Content-Length, the body
 *   is truncated.
 * - `{ discard: true }`: a small body is read to its end so the connection
 *   can serve the next request (a big one is dropped), then the request
 *   resolves, or rejects with `error`.
 */
export type BodyPlan =
  | { readonly limit: number; readonly onChunk: (chunk: Buffer) => boolean }
  | { readonly discard: true; readonly error?: DownloadError };

/** Parses an http(s) URL; undefined for anything else. */
export function parseTarget(url: string | URL): Target | undefined {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  return {
    href: parsed.href,
    origin: parsed.origin,
    host: parsed.host,
    path: `${parsed.pathname}${parsed.search}`,
  };
}

/** For a final status that is not 2xx: discard the body, then fail with a status error. */
export function okOrDiscard(ctx: AttemptContext, head: ResponseHead): BodyPlan | undefined {
  if (head.statusCode >= 200 && head.statusCode < 300) return undefined;
  return {
    discard: true,
    error: statusError(ctx.url, head.statusCode, head.statusText, head.headers),
  };
}

/** Rejects, without reading the body, a response whose declared size is over the limit. */
export function ensureSize(
  ctx: AttemptContext,
  head: ResponseHead,
  size = contentLength(head),
): void {
  if (size === undefined || size <= ctx.maxBytes) return;
  throw tooLarge(ctx, `declared ${size} bytes`);
}

export function contentLength(head: ResponseHead): number | undefined {
  const value = head.headers['content-length'];
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Where a redirect leads: an http(s) URL not visited yet, within the hop
 * limit; otherwise an `E_BAD_URL` or `E_REDIRECT` DownloadError.
 */
export function nextHop(
  ctx: AttemptContext,
  from: Target,
  location: string,
  visited: Set<string>,
): Target {
  let next: URL;
  try {
    next = new URL(location, from.href);
  } catch (error) {
    throw badUrl(ctx.url, `redirect to an invalid URL: ${location}`, error);
  }
  const target = parseTarget(next);
  if (!target) {
    throw badUrl(ctx.url, `redirect to a non-http(s) URL: ${next.href}`);
  }
  if (visited.has(target.href)) {
    throw redirectError(ctx.url, `redirect loop back to ${target.href}`);
  }
  if (visited.size > ctx.maxRedirects) {
    throw redirectError(ctx.url, `more than ${ctx.maxRedirects} redirects`);
  }
  return target;
}

/** A body that failed after `received` bytes: truncated, or the connection lost. */
export function bodyError(
  ctx: AttemptContext,
  error: unknown,
  received: number,
  expected: number | undefined,
): unknown {
  if (error instanceof DownloadError || !isNetworkError(error)) return requestError(ctx.url, error);
  // A peer that closes the connection early (rather than resetting it) is
  // reported as "other side closed" or a Content-Length mismatch.
  const code = errorCode(error);
  const closed = code === 'UND_ERR_SOCKET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
  if (closed && expected !== undefined && received < expected) {
    return truncated(ctx, received, expected, error);
  }
  return networkError(ctx.url, error, `connection lost after ${received} bytes of the body`);
}
