import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  createDownloader,
  type Downloader,
  type DownloaderOptions,
} from '../src/download/downloader.js';
import { AbortedError, DownloadError, isAbortError } from '../src/utils/errors.js';
import { backoffMs } from '../src/download/retry.js';
import { parseRetryAfter } from '../src/download/errors.js';
import type { Dimensions } from '../src/download/measure.js';
import type { Measurement } from '../src/types.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const FIXTURES = new URL('../fixtures/images/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8')) as Record<
  string,
  Dimensions
>;
const sizeOf = (name: string): number => readFileSync(new URL(name, FIXTURES)).length;
const dims = (name: string): Dimensions => {
  const known = expected[name];
  if (!known) throw new Error(`${name} is not in expected.json`);
  return known;
};
const PNG = dims('image.png');

let server: FaultServer;
const open: Downloader[] = [];

/** A downloader with test-sized limits; closed after each test. */
function downloader(options: Partial<DownloaderOptions> = {}): Downloader {
  const created = createDownloader({
    timeoutMs: 5000,
    maxBytes: 64 * 1024 * 1024,
    retries: 0,
    headerOnly: false,
    perHost: 4,
    retryBaseMs: 1,
    retryMaxMs: 1000,
    ...options,
  });
  open.push(created);
  return created;
}

function fetchFrom(path: string, options?: Partial<DownloaderOptions>): Promise<Measurement> {
  return downloader(options).fetchImage(server.url(path));
}

async function failure(promise: Promise<unknown>): Promise<DownloadError> {
  const error: unknown = await promise.then(
    () => new Error('expected the download to fail'),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DownloadError);
  return error as DownloadError;
}

const paths = (prefix = '/'): string[] => server.requestsTo(prefix).map((r) => r.path);

beforeAll(async () => {
  server = await startFaultServer();
});
afterEach(async () => {
  server.reset();
  await Promise.all(open.splice(0).map((d) => d.close()));
});
afterAll(async () => {
  await server.close();
});

describe('formats', () => {
  it.each(Object.entries(expected))('measures %s from the whole body', async (name, size) => {
    const result = await fetchFrom(`/img/${name}`);
    expect(result).toEqual({ ...size, bytes: sizeOf(name), attempts: 1 });
  });

  it.each(Object.entries(expected))('measures %s with --header-only', async (name, size) => {
    const result = await fetchFrom(`/img/${name}`, { headerOnly: true });
    expect(result).toMatchObject(size);
    expect(server.requests[0]?.range).toBe('bytes=0-65535');
  });
});

describe('--header-only', () => {
  it('reads 64 KiB of a large file, not the whole of it', async () => {
    const whole = await fetchFrom('/pad/5000000/image.png');
    const head = await fetchFrom('/pad/5000000/image.png', { headerOnly: true });
    expect(whole).toMatchObject({ ...PNG, bytes: 5_000_000 });
    expect(head).toMatchObject({ ...PNG, bytes: 65_536 });
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=0-65535']);
  });

  it('asks for a further range when a JPEG header lies past the first 64 KiB', async () => {
    const result = await fetchFrom('/img/big-exif.jpg', { headerOnly: true });
    expect(result).toMatchObject({ ...dims('big-exif.jpg'), bytes: sizeOf('big-exif.jpg') });
    expect(server.requests.map((r) => r.range)).toEqual(['bytes=0-65535', 'bytes=65536-131071']);
  });

  it('doubles the ranges until it reaches a TIFF directory near the end', async () => {
    server.addFile('far-ifd.tiff', tiffWithDirectoryAt(300_000, 321, 123));
    const result = await fetchFrom('/img/far-ifd.tiff', { headerOnly: true });
    expect(result).toMatchObject({ width: 321, height: 123, type: 'tiff' });
    expect(server.requests.map((r) => r.range)).toEqual([
      'bytes=0-65535',
      'bytes=65536-131071',
      'bytes=131072-262143',
      'bytes=262144-524287',
    ]);
  });

  it('reads only until the size is known when the server ignores Range', async () => {
    const result = await fetchFrom('/pad/5000000/image.png?range=ignore', { headerOnly: true });
    expect(result).toMatchObject(PNG);
    expect(result.bytes).toBeLessThan(1024 * 1024);
    expect(server.requests[0]?.range).toBe('bytes=0-65535');
  });

  it('measures an endless body that ignores Range and leaves it', async () => {
    const result = await fetchFrom('/endless/image.png', { headerOnly: true, maxBytes: 1e6 });
    expect(result).toMatchObject(PNG);
  });

  it('sends the later ranges straight to where the redirects led', async () => {
    await fetchFrom('/redirect/2/big-exif.jpg', { headerOnly: true });
    expect(server.requests.map((r) => [r.path, r.range])).toEqual([
      ['/redirect/2/big-exif.jpg', 'bytes=0-65535'],
      ['/redirect/1/big-exif.jpg', 'bytes=0-65535'],
      ['/img/big-exif.jpg', 'bytes=0-65535'],
      ['/img/big-exif.jpg', 'bytes=65536-131071'],
    ]);
  });

  it('asks plainly for a file the server will not give a range of (empty)', async () => {
    server.addFile('empty.png', new Uint8Array());
    const error = await failure(fetchFrom('/img/empty.png', { headerOnly: true }));
    expect(error).toMatchObject({
      code: 'E_NOT_IMAGE',
      message: 'not an image: the body was empty',
    });
    expect(server.requests.map((r) => r.range)).toEqual(['bytes=0-65535', undefined]);
  });

  it('rejects a file whose Content-Range total is over the limit', async () => {
    const error = await failure(
      fetchFrom('/pad/100001/image.png', { headerOnly: true, maxBytes: 100_000 }),
    );
    expect(error).toMatchObject({ code: 'E_TOO_LARGE', transient: false });
  });
});

describe('--max-bytes', () => {
  const n = 100_000;
  it.each([
    ['with', ''],
    ['without', '?cl=omit'],
  ])('accepts exactly n bytes and rejects n + 1, %s Content-Length', async (_, query) => {
    const exact = await fetchFrom(`/pad/${n}/image.png${query}`, { maxBytes: n });
    expect(exact).toMatchObject({ ...PNG, bytes: n });
    const over = await failure(
      fetchFrom(`/pad/${n + 1}/image.png${query}`, { maxBytes: n, retries: 2 }),
    );
    expect(over).toMatchObject({ code: 'E_TOO_LARGE', transient: false, attempts: 1 });
    expect(paths('/pad/100001')).toHaveLength(1);
  });

  it('rejects a huge Content-Length without reading the body', async () => {
    const error = await failure(fetchFrom('/pad/10000000000/image.png', { maxBytes: 1e6 }));
    expect(error.message).toBe(
      'image over the limit of 1000000 bytes (declared 10000000000 bytes)',
    );
  });

  it('stops reading an endless body once past the limit', async () => {
    const error = await failure(fetchFrom('/endless/image.png', { maxBytes: 1e6 }));
    expect(error).toMatchObject({ code: 'E_TOO_LARGE', transient: false });
    expect(error.message).toContain('stopped reading past it');
  });
});

describe('failures and retries', () => {
  it('fails a 404 at once, naming the status, and keeps the URL', async () => {
    const url = server.url('/status/404');
    const error = await failure(downloader({ retries: 3 }).fetchImage(url));
    expect(error).toMatchObject({
      code: 'E_HTTP_STATUS',
      status: 404,
      transient: false,
      attempts: 1,
      url,
      message: 'HTTP 404 Not Found',
    });
    expect(server.requests).toHaveLength(1);
  });

  it.each([403, 410])('does not retry a %i', async (status) => {
    await failure(fetchFrom(`/status/${status}`, { retries: 3 }));
    expect(server.requests).toHaveLength(1);
  });

  it('retries a 500 and says how many attempts it made', async () => {
    const error = await failure(fetchFrom('/status/500', { retries: 2 }));
    expect(error).toMatchObject({
      code: 'E_HTTP_STATUS',
      status: 500,
      transient: true,
      attempts: 3,
    });
    expect(error.message).toBe('HTTP 500 Internal Server Error (after 3 attempts)');
    expect(server.requests).toHaveLength(3);
  });

  it.each([
    ['503', 'E_HTTP_STATUS'],
    ['429', 'E_HTTP_STATUS'],
    ['408', 'E_HTTP_STATUS'],
    ['reset', 'E_NETWORK'],
  ])(
    'recovers from %s failures when the retries suffice, naming the retried codes (%s)',
    async (fail, code) => {
      const result = await fetchFrom(`/flaky/2/k${fail}/image.png?fail=${fail}`, { retries: 2 });
      expect(result).toEqual({
        ...PNG,
        bytes: sizeOf('image.png'),
        attempts: 3,
        retried: [code, code],
      });
      expect(server.requests).toHaveLength(3);
    },
  );

  it('gives up when a flaky server fails more often than the retries allow', async () => {
    const error = await failure(fetchFrom('/flaky/5/k/image.png', { retries: 1 }));
    expect(error).toMatchObject({ status: 503, attempts: 2, retried: ['E_HTTP_STATUS'] });
    expect(server.requests).toHaveLength(2);
  });

  it('waits as long as Retry-After asks, capped by retryMaxMs', async () => {
    // Retry-After: 1 s, capped to 300 ms; backoff alone would wait ≤ 1 ms.
    const result = await fetchFrom('/flaky/1/ra/image.png?fail=429&retry-after=1', {
      retries: 1,
      retryMaxMs: 300,
    });
    expect(result.attempts).toBe(2);
    const [first, second] = server.requests;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(280);
  });

  it('keeps the Retry-After of the last 429 on the error', async () => {
    const error = await failure(fetchFrom('/status/429?retry-after=7', { retries: 0 }));
    expect(error).toMatchObject({ status: 429, transient: true, retryAfterMs: 7000 });
  });

  it('times out a server that never answers, and retries it', async () => {
    const error = await failure(fetchFrom('/hang', { timeoutMs: 200, retries: 1 }));
    expect(error).toMatchObject({ code: 'E_TIMEOUT', transient: true, attempts: 2 });
    expect(error.message).toBe('timed out after 200 ms (after 2 attempts)');
    expect(server.requests).toHaveLength(2);
  });

  it('times out a body that drips slower than the deadline', async () => {
    // 512 bytes at 8 bytes per 20 ms would take over a second.
    const error = await failure(fetchFrom('/slow/8/20/image.png', { timeoutMs: 250 }));
    expect(error).toMatchObject({ code: 'E_TIMEOUT', transient: true });
    expect(server.requests[0]?.bytesSent).toBeGreaterThan(0);
  });

  it('times out a body that stops halfway', async () => {
    const error = await failure(fetchFrom('/stall/100/image.png', { timeoutMs: 200 }));
    expect(error.code).toBe('E_TIMEOUT');
  });

  it('reports a connection reset mid-body as a transient network error', async () => {
    const error = await failure(fetchFrom('/reset/100/image.png', { retries: 1 }));
    expect(error).toMatchObject({ code: 'E_NETWORK', transient: true, attempts: 2 });
    expect(error.message).toMatch(/^connection lost after 100 bytes of the body/);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('reports a body shorter than its Content-Length as truncated', async () => {
    const error = await failure(fetchFrom('/truncate/100/image.png'));
    expect(error).toMatchObject({ code: 'E_TRUNCATED', transient: true });
    expect(error.message).toBe(`body ended after 100 of ${sizeOf('image.png')} bytes`);
  });

  it('reports a refused connection as a network error with its cause', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/img/image.png`;
    const error = await failure(downloader().fetchImage(url));
    expect(error).toMatchObject({ code: 'E_NETWORK', transient: true, url });
    expect(error.cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('does not retry an HTML page served instead of an image', async () => {
    const error = await failure(fetchFrom('/html', { retries: 3 }));
    expect(error).toMatchObject({ code: 'E_NOT_IMAGE', transient: false, attempts: 1 });
    expect(error.message).toMatch(/^not an image: \d+ bytes starting "<!doctype html> <html>/);
    expect(server.requests).toHaveLength(1);
  });

  it.each(['ftp://127.0.0.1/a.png', 'not a url', 'file:///etc/passwd'])(
    'refuses %s without a request',
    async (url) => {
      const error = await failure(downloader().fetchImage(url));
      expect(error).toMatchObject({ code: 'E_BAD_URL', url });
      expect(server.requests).toHaveLength(0);
    },
  );
});

describe('redirects', () => {
  it('follows a chain of absolute and relative redirects', async () => {
    expect(await fetchFrom('/redirect/3/image.png')).toMatchObject(PNG);
    expect(await fetchFrom('/redirect/3/image.png?relative=1')).toMatchObject(PNG);
    expect(paths().slice(4)).toEqual([
      '/redirect/3/image.png?relative=1',
      '/redirect/2/image.png?relative=1',
      '/redirect/1/image.png?relative=1',
      '/img/image.png?relative=1',
    ]);
  });

  it('follows 5 hops by default and refuses the sixth', async () => {
    expect(await fetchFrom('/redirect/5/image.png')).toMatchObject(PNG);
    server.reset();
    const error = await failure(fetchFrom('/redirect/6/image.png', { retries: 2 }));
    expect(error).toMatchObject({ code: 'E_REDIRECT', transient: false, attempts: 1 });
    expect(error.message).toBe('more than 5 redirects');
    expect(server.requests).toHaveLength(6);
  });

  it('honours maxRedirects', async () => {
    const error = await failure(fetchFrom('/redirect/1/image.png', { maxRedirects: 0 }));
    expect(error.message).toBe('more than 0 redirects');
  });

  it('stops a redirect loop', async () => {
    const error = await failure(fetchFrom('/loop/k/a'));
    expect(error).toMatchObject({ code: 'E_REDIRECT', transient: false });
    expect(error.message).toBe(`redirect loop back to ${server.url('/loop/k/a')}`);
    expect(paths()).toEqual(['/loop/k/a', '/loop/k/b']);
  });

  it.each(['ftp://example.com/a.png', 'file:///etc/passwd', 'javascript:alert(1)'])(
    'refuses a redirect to %s',
    async (location) => {
      const error = await failure(
        fetchFrom(`/redirect-to?location=${encodeURIComponent(location)}`),
      );
      expect(error).toMatchObject({ code: 'E_BAD_URL', transient: false });
      expect(error.message).toBe(`redirect to a non-http(s) URL: ${location}`);
    },
  );
});

describe('abort', () => {
  it('stops a download mid-body at once', async () => {
    const controller = new AbortController();
    const pending = downloader({ timeoutMs: 60_000 }).fetchImage(
      server.url('/stall/100/image.png'),
      controller.signal,
    );
    await server.until((requests) => (requests[0]?.bytesSent ?? 0) > 0);
    controller.abort();
    const error: unknown = await pending.catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(AbortedError);
    expect(isAbortError(error)).toBe(true);
  });

  it('stops a backoff wait at once and never retries', async () => {
    const controller = new AbortController();
    const pending = downloader({ retries: 3, retryMaxMs: 60_000 }).fetchImage(
      server.url('/status/503?retry-after=60'),
      controller.signal,
    );
    await server.until((requests) => requests[0]?.state === 'finished');
    controller.abort();
    expect(isAbortError(await pending.catch((reason: unknown) => reason))).toBe(true);
    expect(server.requests).toHaveLength(1);
  });

  it('makes no request when the signal has already fired', async () => {
    const error = await downloader()
      .fetchImage(server.url('/img/image.png'), AbortSignal.abort())
      .catch((reason: unknown) => reason);
    expect(error).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('connections', () => {
  // undici ends a body a moment before it frees the connection, so a
  // download that follows at once may open a second one: hence "≤ perHost".
  it('reuses keep-alive connections across many downloads', async () => {
    const before = server.connections;
    const d = downloader({ perHost: 2 });
    for (let i = 0; i < 10; i++) await d.fetchImage(server.url('/img/image.png'));
    await failure(d.fetchImage(server.url('/status/404')));
    for (let i = 0; i < 10; i++) await d.fetchImage(server.url('/img/baseline.jpg'));
    expect(server.requests).toHaveLength(21);
    expect(server.connections - before).toBeLessThanOrEqual(2);
  });

  it('keeps the connection after a 64 KiB range', async () => {
    const before = server.connections;
    const d = downloader({ headerOnly: true, perHost: 2 });
    for (let i = 0; i < 6; i++) await d.fetchImage(server.url('/pad/1000000/image.png'));
    expect(server.connections - before).toBeLessThanOrEqual(2);
  });

  it('opens at most perHost connections to one host', async () => {
    const before = server.connections;
    const d = downloader({ perHost: 2 });
    const gate = server.gate('g');
    const all = Promise.all(
      Array.from({ length: 6 }, () => d.fetchImage(server.url('/gate/g/image.png'))),
    );
    await gate.reached;
    await server.until((requests) => requests.length >= 2);
    gate.open();
    expect(await all).toHaveLength(6);
    expect(server.connections - before).toBe(2);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP-date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('backs off exponentially with full jitter, capped', () => {
    const policy = { retries: 9, baseMs: 100, maxMs: 1000 };
    expect(backoffMs(1, undefined, policy, () => 0.5)).toBe(50);
    expect(backoffMs(3, undefined, policy, () => 0.999)).toBeCloseTo(399.6);
    expect(backoffMs(8, undefined, policy, () => 1)).toBe(1000);
    expect(backoffMs(1, 5000, policy)).toBe(1000);
  });
});

/** A little-endian TIFF whose only directory sits at `offset`. */
function tiffWithDirectoryAt(offset: number, width: number, height: number): Uint8Array {
  const tiff = Buffer.alloc(offset + 2 + 2 * 12 + 4);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(offset, 4);
  tiff.writeUInt16LE(2, offset);
  [
    [256, width],
    [257, height],
  ].forEach(([tag = 0, value = 0], i) => {
    const entry = offset + 2 + i * 12;
    tiff.writeUInt16LE(tag, entry);
    tiff.writeUInt16LE(3, entry + 2); // SHORT
    tiff.writeUInt32LE(1, entry + 4);
    tiff.writeUInt16LE(value, entry + 8);
  });
  return tiff;
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) =>
    probe.close(() => {
      resolve();
    }),
  );
  return port;
}
