/**
 * Where download errors come from and what they say (src/download/errors.ts):
 * a response that breaks HTTP is `E_PROTOCOL` and retried, an error imgjob
 * built itself (a connector's refusal) reaches the image as it was built, and
 * errors keep their code and fields across threads.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDownloader } from '../src/download/downloader.js';
import { fromErrorData, toErrorData } from '../src/download/errors.js';
import { createAddressGuard, guardedConnector } from '../src/download/address-guard.js';
import { AbortedError, DownloadError } from '../src/utils/errors.js';

/** A raw TCP server: answers every request with `reply`, and counts the requests. */
let raw: Server;
let origin: string;
let requests = 0;
const reply = 'HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: -1\r\n\r\nabc';

beforeAll(async () => {
  raw = createServer((socket: Socket) => {
    socket.on('data', () => {
      requests++;
      socket.end(reply);
    });
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => raw.close(resolve));
});

const options = { timeoutMs: 5_000, maxBytes: 1_000_000, headerOnly: false, perHost: 2 };

describe('download errors', () => {
  it('fails a malformed response (Content-Length: -1) with E_PROTOCOL after its retries', async () => {
    requests = 0;
    const downloader = createDownloader({ ...options, retries: 2, retryBaseMs: 1 });
    try {
      const error = await downloader.fetchImage(`${origin}/x.png`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DownloadError);
      expect(error).toMatchObject({ code: 'E_PROTOCOL', attempts: 3, url: `${origin}/x.png` });
      expect((error as Error).message).toMatch(/^malformed response: .*Content-Length/);
      expect(requests).toBe(3);
    } finally {
      await downloader.close();
    }
  });

  it("passes a connector's own refusal through as it was built, not as E_NETWORK", async () => {
    const connect = guardedConnector(createAddressGuard({ allowPrivate: false }));
    const downloader = createDownloader({ ...options, retries: 2, connect });
    try {
      const error = await downloader.fetchImage(`${origin}/x.png`).catch((e: unknown) => e);
      // The connector only knew the host; the image's error names its URL.
      expect(error).toMatchObject({
        code: 'E_ADDRESS_REFUSED',
        attempts: 1,
        url: `${origin}/x.png`,
      });
      expect((error as Error).message).toMatch(/loopback/);
    } finally {
      await downloader.close();
    }
  });

  it('keeps code, message and fields of an error across threads', () => {
    const original = new DownloadError('E_HTTP_STATUS', 'HTTP 503 Service Unavailable', {
      url: 'http://a/b.png',
      status: 503,
      attempts: 4,
      transient: true,
      retryAfterMs: 2000,
    });
    const copy = fromErrorData(structuredClone(toErrorData(original)));
    expect(copy).toBeInstanceOf(DownloadError);
    expect(copy).toMatchObject({
      code: 'E_HTTP_STATUS',
      message: 'HTTP 503 Service Unavailable',
      url: 'http://a/b.png',
      status: 503,
      attempts: 4,
      transient: true,
      retryAfterMs: 2000,
    });
    expect(fromErrorData(toErrorData(new AbortedError()))).toBeInstanceOf(AbortedError);
    // A bug stays a bug (not a DownloadError): the image records it as an internal error.
    const bug = fromErrorData(toErrorData(new TypeError('x is undefined')));
    expect(bug).not.toBeInstanceOf(DownloadError);
    expect(bug.message).toBe('x is undefined');
  });
});
