/**
 * Download attempts on the calling thread (the main one, or each download
 * thread of the pool): one connection pool (see dispatcher.ts) for every
 * download, a total deadline and an optional speed limit per attempt, a byte
 * limit. Bodies are streamed: only the header bytes are kept. Retries and
 * the hosts' turns are the downloader's, on the main thread.
 */
import type { LookupFunction } from 'node:net';

import type { buildConnector } from 'undici';

import { AttemptClock, type InFlight } from './attempt.js';
import { measureHead } from './header-only.js';
import { httpGet, type AttemptContext } from './get-handler.js';
import { ensureSize, okOrDiscard, type Target } from './response.js';
import { abortedError, isUndiciTimeout, tooSlowError, timeoutError } from './errors.js';
import { HeaderProbe, type Measured } from './measure.js';
import { createDispatcher } from './dispatcher.js';
import type { AttemptRunner, ThreadOptions } from './downloader.js';

export function createLocalAttempts(
  options: ThreadOptions,
  connect: buildConnector.connector | undefined,
  lookup?: LookupFunction,
): AttemptRunner {
  const { timeoutMs, maxBytes, perHost, headerOnly, speedLimit, maxRedirects } = options;
  // The deadline below bounds an attempt. undici's own timers get the same
  // value so they never cut an attempt short of the user's limit (its
  // connect timeout defaults to 10 s); when one of them fires first, it is
  // reported as the same timeout.
  const dispatcher = createDispatcher({
    connections: perHost,
    timeoutMs,
    proxy: options.proxy,
    connect,
    lookup,
  });
  const measureOnce = headerOnly ? measureHead : measureWhole;
  const clock = new AttemptClock(timeoutMs, speedLimit);

  return {
    async run(url: string, target: Target, signal?: AbortSignal): Promise<Measured> {
      if (signal?.aborted) throw abortedError(signal);
      const running = clock.start(url, signal);
      const ctx: AttemptContext = {
        dispatcher,
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
        if (running.attempt.tooSlow && speedLimit) throw tooSlowError(url, speedLimit, error);
        if (running.attempt.expired || isUndiciTimeout(error)) {
          throw timeoutError(url, timeoutMs, error);
        }
        throw error;
      } finally {
        running.end();
      }
    },
    inFlight: (): InFlight[] => clock.inFlight(),
    capacity: () => perHost,
    close: () => dispatcher.close(),
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
