/**
 * One GET over a shared undici dispatcher: redirects followed by hand, bodies
 * read in a streamed way under a byte limit, every failure a DownloadError.
 *
 * Redirects are not undici's redirect interceptor: past its hop limit it
 * hands back the 3xx (or throws a bare `Error('max redirects')`), and it
 * reports a loop and a non-http(s) Location alike as an InvalidArgumentError,
 * so the three failures could only be told apart by their message text. Here
 * each is its own error: a loop or too many hops is `E_REDIRECT`, a Location
 * that is not http(s) is `E_BAD_URL`.
 */
import type { IncomingHttpHeaders } from 'node:http';

import type { Dispatcher } from 'undici';

import { DownloadError } from './errors.js';
import { errorCode, isNetworkError, networkError, statusError } from './http-retry.js';

/** What every request of one download attempt shares. */
export type AttemptContext = {
  readonly dispatcher: Dispatcher;
  /** The URL the caller asked for: every error names it. */
  readonly url: string;
  /** Aborts on the caller's signal and at the attempt's deadline. */
  readonly signal: AbortSignal;
  readonly maxBytes: number;
  readonly maxRedirects: number;
};

export type HttpResponse = {
  /** Where the response came from, after redirects. */
  readonly url: URL;
  readonly statusCode: number;
  readonly statusText: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Dispatcher.ResponseData['body'];
};

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = { 'user-agent': 'imgjob', accept: 'image/*, */*;q=0.5' };
/** A redirect or error body bigger than this is not worth keeping the socket for. */
const DISCARD_LIMIT = 64 * 1024;

/** GETs `url`, following redirects; the response may have any final status. */
export async function httpGet(
  ctx: AttemptContext,
  url: URL,
  headers: Record<string, string> = {},
): Promise<HttpResponse> {
  const visited = new Set<string>();
  for (let current = url; ;) {
    visited.add(current.href);
    const res = await send(ctx, current, headers);
    const location = res.headers.location;
    if (!REDIRECT_STATUSES.has(res.statusCode) || typeof location !== 'string') return res;
    await discard(res);
    current = nextHop(ctx, current, location, visited);
  }
}

/** Throws a DownloadError for a final status that is not 2xx (after reading its body). */
export async function ensureOk(ctx: AttemptContext, res: HttpResponse): Promise<void> {
  if (res.statusCode >= 200 && res.statusCode < 300) return;
  await discard(res);
  throw statusError(ctx.url, res.statusCode, res.statusText, res.headers);
}

/** Rejects, without reading the body, a response whose declared size is over the limit. */
export function ensureSize(
  ctx: AttemptContext,
  res: HttpResponse,
  size = contentLength(res),
): void {
  if (size === undefined || size <= ctx.maxBytes) return;
  drop(res);
  throw tooLarge(ctx, `declared ${size} bytes`);
}

/**
 * Reads a body chunk by chunk. `onChunk` returns false to stop early: the
 * rest is dropped (which closes that connection). Past `limit` bytes the body
 * is too large; shorter than its Content-Length, it is truncated.
 */
export async function readBody(
  ctx: AttemptContext,
  res: HttpResponse,
  limit: number,
  onChunk: (chunk: Uint8Array) => boolean,
): Promise<number> {
  const expected = contentLength(res);
  let received = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limit) throw tooLarge(ctx, 'stopped reading past it');
      if (!onChunk(chunk)) {
        drop(res);
        return received;
      }
    }
  } catch (error) {
    drop(res);
    throw bodyError(ctx, error, received, expected);
  }
  if (expected !== undefined && received < expected) {
    throw truncated(ctx, received, expected, undefined);
  }
  return received;
}

/** Destroys a body that will not be read (closing its connection). */
export function drop(res: HttpResponse): void {
  // undici turns a destroy before the end into a RequestAbortedError event;
  // nobody is listening for it any more.
  res.body.on('error', ignore);
  res.body.destroy();
}

export function contentLength(res: HttpResponse): number | undefined {
  const value = res.headers['content-length'];
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

async function send(
  ctx: AttemptContext,
  url: URL,
  headers: Record<string, string>,
): Promise<HttpResponse> {
  try {
    const res = await ctx.dispatcher.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { ...REQUEST_HEADERS, ...headers },
      signal: ctx.signal,
    });
    return { url, ...res };
  } catch (error) {
    throw isNetworkError(error) ? networkError(ctx.url, error) : error;
  }
}

function nextHop(ctx: AttemptContext, from: URL, location: string, visited: Set<string>): URL {
  let next: URL;
  try {
    next = new URL(location, from);
  } catch (error) {
    throw new DownloadError(
      'E_BAD_URL',
      `redirect to an invalid URL: ${location}`,
      {
        url: ctx.url,
      },
      { cause: error },
    );
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new DownloadError('E_BAD_URL', `redirect to a non-http(s) URL: ${next.href}`, {
      url: ctx.url,
    });
  }
  if (visited.has(next.href)) {
    throw new DownloadError('E_REDIRECT', `redirect loop back to ${next.href}`, { url: ctx.url });
  }
  if (visited.size > ctx.maxRedirects) {
    throw new DownloadError('E_REDIRECT', `more than ${ctx.maxRedirects} redirects`, {
      url: ctx.url,
    });
  }
  return next;
}

/** Reads a small body to the end so its keep-alive connection can serve the next request. */
export async function discard(res: HttpResponse): Promise<void> {
  await res.body.dump({ limit: DISCARD_LIMIT });
}

function bodyError(
  ctx: AttemptContext,
  error: unknown,
  received: number,
  expected: number | undefined,
): unknown {
  if (error instanceof DownloadError || !isNetworkError(error)) return error;
  // A peer that closes the connection early (rather than resetting it) is
  // reported as "other side closed" or a Content-Length mismatch.
  const code = errorCode(error);
  const closed = code === 'UND_ERR_SOCKET' || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH';
  if (closed && expected !== undefined && received < expected) {
    return truncated(ctx, received, expected, error);
  }
  return networkError(ctx.url, error, `connection lost after ${received} bytes of the body`);
}

function truncated(ctx: AttemptContext, received: number, expected: number, cause: unknown) {
  return new DownloadError(
    'E_TRUNCATED',
    `body ended after ${received} of ${expected} bytes`,
    { url: ctx.url, transient: true },
    cause === undefined ? undefined : { cause },
  );
}

function tooLarge(ctx: AttemptContext, detail: string): DownloadError {
  return new DownloadError(
    'E_TOO_LARGE',
    `image over the limit of ${ctx.maxBytes} bytes (${detail})`,
    { url: ctx.url },
  );
}

function ignore(): void {
  // Deliberately empty: see drop().
}
