/**
 * Downloads on the calling thread (the main one with `threads: 1`, or each
 * download thread of the pool): one undici Agent (a keep-alive pool,
 * `perHost` connections per origin) for every download, a total deadline per
 * attempt, a byte limit, retries of transient failures. Bodies are streamed:
 * only the header bytes are kept.
 */
import { Agent, type buildConnector } from 'undici';

import { AttemptClock } from './attempt.js';
import { measureHead } from './header-only.js';
import { httpGet, type AttemptContext } from './get-handler.js';
import { ensureSize, okOrDiscard, parseTarget, type Target } from './response.js';
import { withRetries, type RetryPolicy } from './retry.js';
import { abortedError, badUrl, isUndiciTimeout, timeoutError } from './errors.js';
import { HeaderProbe, type Measured } from './measure.js';
import type { Downloader, DownloaderOptions } from './downloader.js';

export function createLocalDownloader(
  options: DownloaderOptions,
  connect: buildConnector.connector | undefined = options.connect,
): Downloader {
  const { timeoutMs, maxBytes, retries, perHost, headerOnly } = options;
  const maxRedirects = options.maxRedirects ?? 5;
  const policy: RetryPolicy = {
    retries,
    baseMs: options.retryBaseMs ?? 250,
    maxMs: options.retryMaxMs ?? 30_000,
  };
  // The deadline below bounds an attempt. undici's own timers get the same
  // value so they never cut an attempt short of the user's limit (its
  // connect timeout defaults to 10 s); when one of them fires first, it is
  // reported as the same timeout.
  const agent = new Agent({
    connections: perHost,
    connect: connect ?? { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const measureOnce = headerOnly ? measureHead : measureWhole;
  const clock = new AttemptClock(timeoutMs);

  async function attempt(url: string, target: Target, signal?: AbortSignal): Promise<Measured> {
    if (signal?.aborted) throw abortedError(signal);
    const running = clock.start(signal);
    const ctx: AttemptContext = {
      dispatcher: agent,
      url,
      target,
      attempt: running.attempt,
      maxBytes,
      maxRedirects,
    };
    try {
      return await measureOnce(ctx);
    } catch (error) {
      // An abort or the deadline surfaces as whatever undici was doing at
      // the time (a RequestAbortedError, a destroyed body…): name the reason.
      if (signal?.aborted) throw abortedError(signal);
      if (running.attempt.expired || isUndiciTimeout(error)) {
        throw timeoutError(url, timeoutMs, error);
      }
      throw error;
    } finally {
      running.end();
    }
  }

  return {
    async fetchImage(url, signal) {
      if (signal?.aborted) throw abortedError(signal);
      const target = parseTarget(url);
      if (!target) throw badUrl(url, 'not an http(s) URL');
      const { value, attempts } = await withRetries(
        () => attempt(url, target, signal),
        policy,
        signal,
      );
      return { ...value, attempts };
    },
    close: () => agent.close(),
  };
}

/** Default mode: the whole body is read (as a GPU step would need it), only its head kept. */
async function measureWhole(ctx: AttemptContext): Promise<Measured> {
  const probe = new HeaderProbe({ url: ctx.url });
  const { received } = await httpGet(ctx, ctx.target, undefined, (head) => {
    const failed = okOrDiscard(ctx, head);
    if (failed) return failed;
    ensureSize(ctx, head);
    probe.contentType = head.headers['content-type']?.toString();
    return {
      limit: ctx.maxBytes,
      onChunk: (chunk) => {
        probe.push(chunk);
        return true;
      },
    };
  });
  return { ...probe.finish(), bytes: received };
}
