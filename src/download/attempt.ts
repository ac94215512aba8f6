/**
 * The two ways a download attempt is stopped before it ends by itself: its
 * deadline (a total limit over connect, headers and body) and the caller's
 * AbortSignal. Both stop the request in flight through undici's dispatch
 * controller, so an attempt costs one timer and no AbortController or event
 * listener of its own: one listener per caller signal serves every attempt
 * made under it.
 *
 * With a speed limit (curl's `--speed-limit`/`--speed-time`), one timer per
 * clock looks at every attempt once a second: an attempt that received fewer
 * than `bytesPerSecond` in each second for `seconds` in a row is stopped.
 */

import type { SpeedLimit } from '../types.js';

export type { SpeedLimit };

/** Why an attempt was stopped before it ended by itself. */
export type StopKind = 'deadline' | 'too slow' | 'caller';

/** An attempt in flight, as the progress line and `status` name the slowest. */
export type InFlight = {
  readonly url: string;
  /** `Date.now()` when the attempt started. */
  readonly startedAt: number;
  /** Bytes received so far (body, and any redirect or error body). */
  readonly bytes: number;
};

/** The request of an attempt in flight: stopping it fails it with `reason` at once. */
export type Stoppable = { stop(reason: Error): void };

/** One attempt: what its requests check before they start and register while they run. */
export class Attempt {
  readonly url: string;
  readonly startedAt = Date.now();
  /** Bytes received so far; the GET handler adds every chunk. */
  received = 0;
  #stopped: Error | undefined;
  #stopKind: StopKind | undefined;
  #current: Stoppable | undefined;
  /** For the speed limit: bytes at the last look, and since when it has been too slow. */
  lastReceived = 0;
  slowSince: number | undefined;

  constructor(url: string) {
    this.url = url;
  }

  /** Why the attempt was stopped, once it was. */
  get stopped(): Error | undefined {
    return this.#stopped;
  }

  /** Whether the deadline (rather than the caller) stopped it. */
  get expired(): boolean {
    return this.#stopKind === 'deadline';
  }

  /** Whether the speed limit stopped it. */
  get tooSlow(): boolean {
    return this.#stopKind === 'too slow';
  }

  /** `request` runs now; it is stopped at once if the attempt already was. */
  track(request: Stoppable): void {
    this.#current = request;
    if (this.#stopped) request.stop(this.#stopped);
  }

  untrack(request: Stoppable): void {
    if (this.#current === request) this.#current = undefined;
  }

  /** @internal by the clock */
  stop(reason: Error, kind: StopKind): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    this.#stopKind = kind;
    this.#current?.stop(reason);
  }
}

/** Starts attempts under a deadline of `timeoutMs` each and the caller's signals. */
export class AttemptClock {
  readonly #timeoutMs: number;
  readonly #speedLimit: SpeedLimit | undefined;
  /** The attempts running under each caller signal (one listener per signal). */
  readonly #bySignal = new WeakMap<AbortSignal, Set<Attempt>>();
  readonly #running = new Set<Attempt>();
  #speedTimer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number, speedLimit?: SpeedLimit) {
    this.#timeoutMs = timeoutMs;
    this.#speedLimit = speedLimit;
  }

  /** Starts an attempt; call the returned `end` when it is over, however it ended. */
  start(url: string, signal: AbortSignal | undefined): { readonly attempt: Attempt; end(): void } {
    const attempt = new Attempt(url);
    const timeoutMs = this.#timeoutMs;
    const timer = setTimeout(() => {
      attempt.stop(new Error(`deadline of ${timeoutMs} ms passed`), 'deadline');
    }, timeoutMs);
    const running = signal && this.#watch(signal);
    running?.add(attempt);
    this.#running.add(attempt);
    if (this.#speedLimit && !this.#speedTimer) {
      const limit = this.#speedLimit;
      this.#speedTimer = setInterval(() => {
        this.#checkSpeed(limit);
      }, 1000);
      this.#speedTimer.unref();
    }
    const all = this.#running;
    return {
      attempt,
      end: () => {
        clearTimeout(timer);
        running?.delete(attempt);
        all.delete(attempt);
        if (all.size === 0 && this.#speedTimer) {
          clearInterval(this.#speedTimer);
          this.#speedTimer = undefined;
        }
      },
    };
  }

  /** The attempts running now, oldest first. */
  inFlight(): InFlight[] {
    return [...this.#running].map(({ url, startedAt, received }) => ({
      url,
      startedAt,
      bytes: received,
    }));
  }

  /** Once a second: stops the attempts that were slower than the limit for too long. */
  #checkSpeed({ bytesPerSecond, seconds }: SpeedLimit): void {
    const now = Date.now();
    for (const attempt of this.#running) {
      const got = attempt.received - attempt.lastReceived;
      attempt.lastReceived = attempt.received;
      if (got >= bytesPerSecond) {
        attempt.slowSince = undefined;
        continue;
      }
      attempt.slowSince ??= Math.max(attempt.startedAt, now - 1000);
      if (now - attempt.slowSince >= seconds * 1000) {
        const reason = new Error(`slower than ${bytesPerSecond} bytes/s for ${seconds} s`);
        attempt.stop(reason, 'too slow');
      }
    }
  }

  #watch(signal: AbortSignal): Set<Attempt> {
    let running = this.#bySignal.get(signal);
    if (running) return running;
    const attempts = new Set<Attempt>();
    running = attempts;
    this.#bySignal.set(signal, attempts);
    signal.addEventListener(
      'abort',
      () => {
        const reason = signal.reason instanceof Error ? signal.reason : new Error('aborted');
        for (const attempt of attempts) attempt.stop(reason, 'caller');
      },
      { once: true },
    );
    return attempts;
  }
}
