/**
 * Hosts as first-class: every download attempt asks its host's turn here
 * first, on the main thread, which schedules the attempts of every download
 * thread. So one host's state holds for all its stores on all threads:
 *
 * - a 429 or 503 with Retry-After pauses the whole host for that time (capped
 *   like any backoff wait): no attempt to it starts before the pause is over;
 * - a 429 or 503 halves the host's concurrency, each success grows it back by
 *   one: never below 1, never above `perHost`;
 * - the attempts that were turned away go first when the host takes requests
 *   again, so a retry is not starved by the stores queued behind it.
 *
 * It also counts, per host, the requests sent and the 429/503 answers.
 */

import { log } from '../log/process-log.js';

/** What an attempt's answer says about its host. */
export type HostOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** HTTP status of the answer, when one came. */
      readonly status: number | undefined;
      /** The answer's Retry-After, in ms. */
      readonly retryAfterMs: number | undefined;
    };

import type { HostCounts, PausedHosts } from '../types.js';

export type { HostCounts, PausedHosts };

export type HostBoardOptions = {
  /** Most attempts in flight to one host. */
  readonly perHost: number;
  /** Longest pause a Retry-After can ask for. */
  readonly maxPauseMs: number;
  /**
   * How many attempts to one host the threads can run at once without any
   * waiting inside undici (a request queued there would go out after a
   * pause began): the threads' shares of `perHost` that are running now.
   * @default () => perHost
   */
  readonly capacity?: () => number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Runs the turns' giving-out on a later turn of the event loop (see `#pump`). @default setImmediate */
  readonly defer?: (give: () => void) => void;
};

type Waiter = {
  readonly grant: () => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
};

type Host = {
  readonly name: string;
  limit: number;
  inFlight: number;
  pausedUntil: number;
  pausedBy: number;
  timer: NodeJS.Timeout | undefined;
  readonly waiting: Waiter[];
  requests: number;
  status429: number;
  status503: number;
  /** How many times a Retry-After has paused the host. */
  pauses: number;
};

/** Gives up a turn taken with `HostBoard.turn()`. */
export type Release = () => void;

export class HostBoard {
  readonly #perHost: number;
  readonly #maxPauseMs: number;
  readonly #now: () => number;
  readonly #capacity: () => number;
  readonly #hosts = new Map<string, Host>();
  /** Hosts whose waiters may get a turn at the next grant. */
  readonly #due = new Set<Host>();
  #granting = false;
  readonly #defer: (give: () => void) => void;

  constructor(options: HostBoardOptions) {
    this.#perHost = options.perHost;
    this.#maxPauseMs = options.maxPauseMs;
    this.#now = options.now ?? Date.now;
    this.#capacity = options.capacity ?? (() => this.#perHost);
    this.#defer = options.defer ?? ((give) => setImmediate(give));
  }

  /**
   * Waits for a turn on `host`: not paused, and under its concurrency.
   * `retry` puts the caller at the front of the line. Rejects with the
   * signal's reason when it fires first.
   */
  turn(host: string, signal: AbortSignal | undefined, retry: boolean): Promise<Release> {
    const state = this.#host(host);
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        signal,
        grant: () => {
          signal?.removeEventListener('abort', waiter.onAbort);
          state.inFlight++;
          resolve(this.#release(state));
        },
        onAbort: () => {
          const at = state.waiting.indexOf(waiter);
          if (at >= 0) state.waiting.splice(at, 1);
          reject(signal?.reason as Error);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      if (retry) state.waiting.unshift(waiter);
      else state.waiting.push(waiter);
      this.#pump(state);
    });
  }

  /** Tells the host's state what an attempt's answer was. */
  record(host: string, outcome: HostOutcome): void {
    const state = this.#host(host);
    state.requests++;
    if (outcome.ok) {
      state.limit = Math.min(this.#perHost, state.limit + 1);
      this.#pump(state);
      return;
    }
    const { status } = outcome;
    if (status !== 429 && status !== 503) return;
    if (status === 429) state.status429++;
    else state.status503++;
    state.limit = Math.max(1, Math.floor(state.limit / 2));
    if (outcome.retryAfterMs !== undefined) {
      const now = this.#now();
      const until = now + Math.min(outcome.retryAfterMs, this.#maxPauseMs);
      if (until > state.pausedUntil) {
        // Said once per pause, not again when a later answer extends it.
        if (state.pausedUntil <= now) logPause(host, status, until - now, ++state.pauses);
        state.pausedUntil = until;
        state.pausedBy = status;
      }
    }
    this.#schedule(state);
  }

  /** The hosts paused now, by the status that paused them. */
  paused(): PausedHosts {
    const now = this.#now();
    const byStatus: Record<string, number> = {};
    let total = 0;
    for (const host of this.#hosts.values()) {
      if (host.pausedUntil <= now) continue;
      total++;
      byStatus[host.pausedBy] = (byStatus[host.pausedBy] ?? 0) + 1;
    }
    return { total, by_status: byStatus };
  }

  /** The `top` hosts by requests sent (then 429/503 answers), with their counts. */
  summary(top = 20): HostCounts[] {
    return [...this.#hosts.values()]
      .sort(
        (a, b) =>
          b.requests - a.requests ||
          b.status429 + b.status503 - (a.status429 + a.status503) ||
          a.name.localeCompare(b.name),
      )
      .slice(0, top)
      .map((host) => ({
        host: host.name,
        requests: host.requests,
        status_429: host.status429,
        status_503: host.status503,
      }));
  }

  /** Stops the pause timers (the process may then exit). */
  close(): void {
    this.#due.clear();
    for (const host of this.#hosts.values()) clearTimeout(host.timer);
  }

  #host(name: string): Host {
    let host = this.#hosts.get(name);
    if (!host) {
      host = {
        name,
        limit: this.#perHost,
        inFlight: 0,
        pausedUntil: 0,
        pausedBy: 0,
        timer: undefined,
        waiting: [],
        requests: 0,
        status429: 0,
        status503: 0,
        pauses: 0,
      };
      this.#hosts.set(name, host);
    }
    return host;
  }

  #open(host: Host): boolean {
    const limit = Math.min(host.limit, this.#capacity());
    return host.inFlight < limit && host.pausedUntil <= this.#now();
  }

  #release(host: Host): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      host.inFlight--;
      this.#pump(host);
    };
  }

  /**
   * Turns are given out on the next turn of the event loop, after every
   * answer that has arrived by then was read: an answer waiting unread
   * behind the one that freed a turn may be the 429 that pauses the host.
   * (On a busy machine a process can be kept off the CPU for a long time,
   * and many answers arrive at once when it comes back.)
   */
  #pump(host: Host): void {
    this.#due.add(host);
    if (this.#granting) return;
    this.#granting = true;
    this.#defer(() => {
      this.#granting = false;
      const due = [...this.#due];
      this.#due.clear();
      for (const one of due) {
        while (one.waiting.length > 0 && this.#open(one)) one.waiting.shift()?.grant();
        this.#schedule(one);
      }
    });
  }

  /** While paused with attempts waiting: wake up when the pause is over. */
  #schedule(host: Host): void {
    if (host.timer || host.waiting.length === 0) return;
    const wait = host.pausedUntil - this.#now();
    if (wait <= 0) return;
    host.timer = setTimeout(() => {
      host.timer = undefined;
      this.#pump(host);
    }, wait);
  }
}

/**
 * A host's first pause is a warning; its later ones are routine (`info`,
 * which `run`'s terminal hides): a rate-limited host pauses again and again,
 * and the progress line already counts the hosts paused now.
 */
function logPause(host: string, status: number, ms: number, pause: number): void {
  const seconds = Math.round(ms / 100) / 10;
  const again = pause === 1 ? '' : ` again (pause ${pause})`;
  log.event(
    'host_paused',
    `paused ${host}${again} for ${seconds} s: HTTP ${status} with Retry-After`,
    { host, status, seconds, pause },
    pause === 1 ? 'warn' : 'info',
  );
}
