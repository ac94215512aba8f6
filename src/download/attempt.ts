/**
 * The two ways a download attempt is stopped before it ends by itself: its
 * deadline (a total limit over connect, headers and body) and the caller's
 * AbortSignal. Both stop the request in flight through undici's dispatch
 * controller, so an attempt costs one timer and no AbortController or event
 * listener of its own: one listener per caller signal serves every attempt
 * made under it.
 */

/** The request of an attempt in flight: stopping it fails it with `reason` at once. */
export type Stoppable = { stop(reason: Error): void };

/** One attempt: what its requests check before they start and register while they run. */
export class Attempt {
  #stopped: Error | undefined;
  #expired = false;
  #current: Stoppable | undefined;

  /** Why the attempt was stopped, once it was. */
  get stopped(): Error | undefined {
    return this.#stopped;
  }

  /** Whether the deadline (rather than the caller) stopped it. */
  get expired(): boolean {
    return this.#expired;
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
  stop(reason: Error, expired: boolean): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    this.#expired = expired;
    this.#current?.stop(reason);
  }
}

/** Starts attempts under a deadline of `timeoutMs` each and the caller's signals. */
export class AttemptClock {
  readonly #timeoutMs: number;
  /** The attempts running under each caller signal (one listener per signal). */
  readonly #bySignal = new WeakMap<AbortSignal, Set<Attempt>>();

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Starts an attempt; call the returned `end` when it is over, however it ended. */
  start(signal: AbortSignal | undefined): { readonly attempt: Attempt; end(): void } {
    const attempt = new Attempt();
    const timeoutMs = this.#timeoutMs;
    const timer = setTimeout(() => {
      attempt.stop(new Error(`deadline of ${timeoutMs} ms passed`), true);
    }, timeoutMs);
    const running = signal && this.#watch(signal);
    running?.add(attempt);
    return {
      attempt,
      end() {
        clearTimeout(timer);
        running?.delete(attempt);
      },
    };
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
        for (const attempt of attempts) attempt.stop(reason, false);
      },
      { once: true },
    );
    return attempts;
  }
}
