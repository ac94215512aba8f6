/**
 * Redis weather: the error replies and lost connections a production Redis
 * gives for a while (OOM under noeviction, READONLY during a failover, a
 * restart) are conditions to wait out, not bugs. One tracker per process
 * says each change of condition in one line, and `retrying` runs a command
 * until Redis answers it.
 */
import { AbortedError } from '../utils/errors.js';
import { realSleep } from '../utils/sleep.js';
import { redactText, type RedisTarget } from './redis-url.js';

/** The error replies a healthy Redis gives for a while; each names why. */
const REPLIES = {
  OOM: 'OOM (maxmemory reached)',
  READONLY: 'READONLY (it is a replica now: a failover?)',
  MISCONF: 'MISCONF (it cannot save to its disk)',
  LOADING: 'LOADING (it is loading its data)',
  BUSY: 'BUSY (a script runs too long)',
  NOSCRIPT: 'NOSCRIPT (it lost its scripts)',
  MASTERDOWN: 'MASTERDOWN (the replica lost its master)',
  NOREPLICAS: 'NOREPLICAS (not enough replicas)',
  TRYAGAIN: 'TRYAGAIN',
  CLUSTERDOWN: 'CLUSTERDOWN',
} as const;

type ReplyKind = keyof typeof REPLIES;

const REPLY_PATTERN = new RegExp(`\\b(${Object.keys(REPLIES).join('|')})\\b`);

/** Errors of the connection itself (Redis away, restarting, unreachable). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** One condition of Redis: an error reply it gives, or no connection. */
export type Condition =
  | { readonly kind: 'reply'; readonly reply: ReplyKind }
  | { readonly kind: 'unreachable'; readonly code: string };

/** What an error says about Redis, or undefined when it is no weather (a bug, a state error). */
export function conditionOf(error: unknown): Condition | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && CONNECTION_CODES.has(code)) return { kind: 'unreachable', code };
  const reply = REPLY_PATTERN.exec(error.message)?.[1] as ReplyKind | undefined;
  if (reply !== undefined) return { kind: 'reply', reply };
  if (/connection is closed|stream isn't writeable|socket closed unexpectedly/i.test(error.message))
    return { kind: 'unreachable', code: 'connection closed' };
  const text = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND)\b/.exec(error.message);
  if (text?.[1] !== undefined) return { kind: 'unreachable', code: text[1] };
  return undefined;
}

/** `OOM (maxmemory reached)`, `unreachable (ECONNREFUSED)`: what Redis answered, for the 75 line. */
export function describeCondition(condition: Condition): string {
  return condition.kind === 'reply'
    ? `answers ${REPLIES[condition.reply]}`
    : `is unreachable (${condition.code})`;
}

function sameCondition(a: Condition | undefined, b: Condition | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.kind === 'reply'
    ? b.kind === 'reply' && a.reply === b.reply
    : b.kind === 'unreachable' && a.code === b.code;
}

/** Anything that emits ioredis's or BullMQ's `error` and `ready` events. */
type Emitter = {
  on(event: 'error', listener: (error: Error) => void): unknown;
};

/**
 * The condition of one Redis as a process sees it, shared by all its
 * connections: one line when it turns bad, one when it changes, one when
 * it is back. Never a stack or an error object; the password never.
 */
export class RedisWeather {
  readonly #target: RedisTarget;
  readonly #log: (line: string, bad: boolean) => void;
  #condition: Condition | undefined;
  #since = 0;

  /** `log` hears each line, and whether it says Redis turned (or stays) bad. */
  constructor(target: RedisTarget, log: (line: string, bad: boolean) => void) {
    this.#target = target;
    this.#log = log;
  }

  /** The condition now, and since when (epoch ms); undefined while Redis answers. */
  get current(): { readonly condition: Condition; readonly since: number } | undefined {
    return this.#condition && { condition: this.#condition, since: this.#since };
  }

  /**
   * Takes note of an error from Redis. Returns true when it is weather (to
   * wait out); other errors are the caller's to handle.
   */
  observe(error: unknown): boolean {
    const condition = conditionOf(error);
    if (condition === undefined) return false;
    if (sameCondition(condition, this.#condition)) return true;
    if (this.#condition === undefined) this.#since = Date.now();
    this.#condition = condition;
    this.#log(this.#line(condition), true);
    return true;
  }

  /** A command was answered: Redis is back, if it was away. */
  clear(): void {
    if (this.#condition === undefined) return;
    const seconds = Math.round((Date.now() - this.#since) / 1000);
    this.#condition = undefined;
    this.#log(`Redis back after ${seconds} s`, false);
  }

  /**
   * Listens for the `error` events of an ioredis or BullMQ object (one with
   * no listener would crash the process): weather is said once; anything
   * else goes to `other` (default: one line, said once in a row).
   */
  watch(emitter: Emitter, other?: (error: Error) => void): void {
    let last = '';
    emitter.on('error', (error: Error) => {
      if (this.observe(error)) return;
      if (other) {
        other(error);
        return;
      }
      const line = `Redis error: ${this.redact(error)}`;
      if (line !== last) this.#log(line, true);
      last = line;
    });
  }

  /** The first line of an error's message, with any credentials hidden. */
  redact(error: unknown): string {
    const message = error instanceof Error ? error.message : String(error);
    return redactText(message.split('\n')[0] ?? message, this.#target.url);
  }

  #line(condition: Condition): string {
    if (condition.kind === 'unreachable') {
      return `Redis unreachable at ${hostOf(this.#target)} (${condition.code}); retrying`;
    }
    return `Redis answers ${REPLIES[condition.reply]}: waiting`;
  }
}

/** `10.0.0.5:6379`: where Redis is, without anything secret. */
export function hostOf(target: RedisTarget): string {
  const url = new URL(target.safe);
  return `${url.hostname}:${url.port === '' ? '6379' : url.port}`;
}

/** The run this wait belongs to was stopped (its signal fired). */
function stopped(): AbortedError {
  return new AbortedError('stopped while waiting on Redis');
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;

/**
 * Runs a Redis command until Redis answers it: weather errors are waited
 * out with a growing backoff, others are thrown. A command can also hang
 * while the connection is away (ioredis queues it): `signal` ends the wait
 * either way, with an AbortedError.
 */
export async function retrying<T>(
  weather: RedisWeather,
  command: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  let backoff = FIRST_BACKOFF_MS;
  let failed = false;
  for (;;) {
    if (signal?.aborted) throw stopped();
    try {
      const answer = await abortable(command(), signal);
      // Only an answer to what failed says Redis is back: under OOM, reads
      // are answered while writes are refused.
      if (failed) weather.clear();
      return answer;
    } catch (error) {
      if (error instanceof AbortedError || !weather.observe(error)) throw error;
      failed = true;
    }
    // Cut short by the signal: the loop's first line then ends the wait.
    await realSleep(backoff, signal).catch(() => undefined);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

/** Resolves as `promise` does, or rejects with an AbortedError once `signal` fires. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const stop = (): void => {
      reject(stopped());
    };
    if (signal.aborted) stop();
    signal.addEventListener('abort', stop, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', stop);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', stop);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
