import { DownloadError } from '../../src/utils/errors.js';
import type { FetchImage } from '../../src/engine/process-image.js';
import type { Measurement } from '../../src/types.js';

/**
 * A fetchImage whose downloads finish only when the test says so, so tests
 * can observe exactly what has started at each step, without timing.
 * (Used for the ordering rules of the store layer; the real downloader is
 * tested against a real HTTP server.)
 */
export function deferredFetch(): {
  fetchImage: FetchImage;
  started: string[];
  /** Resolves the pending download of `url` with a 10×20 image. */
  succeed: (url: string) => Promise<void>;
  fail: (url: string, message?: string) => Promise<void>;
  waitForStart: (url: string) => Promise<void>;
} {
  const started: string[] = [];
  const pending = new Map<
    string,
    { resolve: (m: Measurement) => void; reject: (e: unknown) => void }
  >();
  const startWaiters = new Map<string, () => void>();

  const fetchImage: FetchImage = (url, signal) =>
    new Promise<Measurement>((resolve, reject) => {
      started.push(url);
      pending.set(url, { resolve, reject });
      signal?.addEventListener('abort', () => {
        reject(
          signal.reason instanceof Error
            ? signal.reason
            : new DOMException('aborted', 'AbortError'),
        );
      });
      startWaiters.get(url)?.();
    });

  const settle = async (
    url: string,
    action: (entry: { resolve: (m: Measurement) => void; reject: (e: unknown) => void }) => void,
  ) => {
    await waitForStart(url);
    const entry = pending.get(url);
    if (!entry) throw new Error(`${url} was never requested`);
    pending.delete(url);
    action(entry);
    // Let the store react before the test looks again.
    await new Promise((resolve) => setImmediate(resolve));
  };

  const waitForStart = (url: string): Promise<void> =>
    started.includes(url)
      ? Promise.resolve()
      : new Promise((resolve) => {
          startWaiters.set(url, resolve);
        });

  return {
    fetchImage,
    started,
    succeed: (url) =>
      settle(url, (entry) => {
        entry.resolve({ width: 10, height: 20, type: 'png', bytes: 100, attempts: 1 });
      }),
    fail: (url, message = 'HTTP 404 Not Found') =>
      settle(url, (entry) => {
        entry.reject(new DownloadError('E_HTTP_STATUS', message, { url, status: 404 }));
      }),
    waitForStart,
  };
}
