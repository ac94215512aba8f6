/**
 * One GET over a shared undici dispatcher: redirects followed by hand, the
 * body handed chunk by chunk to the caller under a byte limit, every failure
 * a DownloadError.
 *
 * It is undici's `dispatch()` with a handler of its own rather than
 * `request()`: no body stream, no async iterator and no AbortSignal listener
 * per request (the attempt stops the request through the dispatch
 * controller). The chunks come straight from the HTTP parser, in order.
 *
 * Redirects are not undici's redirect interceptor: past its hop limit it
 * hands back the 3xx (or throws a bare `Error('max redirects')`), and it
 * reports a loop and a non-http(s) Location alike as an InvalidArgumentError,
 * so the three failures could only be told apart by their message text. Here
 * each is its own error (see `nextHop()`).
 */
import type { IncomingHttpHeaders } from 'node:http';

import type { Dispatcher } from 'undici';

import type { Attempt, Stoppable } from './attempt.js';
import type { DownloadError } from '../utils/errors.js';
import {
  bodyError,
  contentLength,
  nextHop,
  type BodyPlan,
  type ResponseHead,
  type Target,
} from './response.js';
import { requestError, tooLarge, truncated } from './errors.js';

/** What every request of one download attempt shares. */
export type AttemptContext = {
  readonly dispatcher: Dispatcher;
  /** The URL the caller asked for: every error names it. */
  readonly url: string;
  /** The caller's URL, parsed once. */
  readonly target: Target;
  /** Stops the request in flight on the caller's abort and at the attempt's deadline. */
  readonly attempt: Attempt;
  readonly maxBytes: number;
  readonly maxRedirects: number;
};

export type GetResult = {
  readonly head: ResponseHead;
  /** Body bytes read (0 for a discarded body). */
  readonly received: number;
};

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = { 'user-agent': 'imgjob', accept: 'image/*, */*;q=0.5' };
/** A redirect or error body bigger than this is not worth keeping the socket for. */
const DISCARD_LIMIT = 64 * 1024;

/**
 * GETs `target`, following redirects, and hands the final response's head to
 * `plan`. Resolves once the body is read (or dropped on purpose).
 */
export function httpGet(
  ctx: AttemptContext,
  target: Target,
  headers: Readonly<Record<string, string>> | undefined,
  plan: (head: ResponseHead) => BodyPlan,
): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const get = new Get(ctx, headers ? { ...REQUEST_HEADERS, ...headers } : REQUEST_HEADERS, plan);
    get.start(target, resolve, reject);
  });
}

type Phase = 'head' | 'read' | 'discard' | 'redirect';

/**
 * The dispatch handler of one GET, redirects included. Callbacks of a hop
 * that is over (their controller is not the current one) are ignored.
 */
class Get implements Dispatcher.DispatchHandler, Stoppable {
  readonly #ctx: AttemptContext;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #plan: (head: ResponseHead) => BodyPlan;
  /** The hops so far, once there is a redirect. */
  #visited: Set<string> | undefined;
  #resolve: (result: GetResult) => void = ignore;
  #reject: (error: unknown) => void = ignore;
  #settled = false;
  #controller: Dispatcher.DispatchController | undefined;
  #target!: Target;
  #phase: Phase = 'head';
  #head: ResponseHead | undefined;
  #onChunk: (chunk: Buffer) => boolean = keepReading;
  #limit = 0;
  /** What a discarded body's request fails with once it is read. */
  #discardError: DownloadError | undefined;
  #expected: number | undefined;
  #received = 0;
  #location = '';

  constructor(
    ctx: AttemptContext,
    headers: Readonly<Record<string, string>>,
    plan: (head: ResponseHead) => BodyPlan,
  ) {
    this.#ctx = ctx;
    this.#headers = headers;
    this.#plan = plan;
  }

  start(
    target: Target,
    resolve: (result: GetResult) => void,
    reject: (error: unknown) => void,
  ): void {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#ctx.attempt.track(this);
    if (!this.#settled) this.#send(target);
  }

  stop(reason: Error): void {
    const controller = this.#controller;
    this.#fail(reason);
    controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A request that waited in the pool's queue after its attempt was stopped.
    if (this.#settled) {
      controller.abort(this.#ctx.attempt.stopped ?? new Error('request no longer wanted'));
      return;
    }
    this.#controller = controller;
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    if (controller !== this.#controller || this.#settled || statusCode < 200) return;
    const head: ResponseHead = {
      url: this.#target,
      statusCode,
      statusText: statusMessage ?? '',
      headers,
    };
    this.#head = head;
    this.#received = 0;
    this.#expected = contentLength(head);
    const location = headers.location;
    if (REDIRECT_STATUSES.has(statusCode) && typeof location === 'string') {
      this.#location = location;
      this.#startDiscard('redirect', controller);
      return;
    }
    let body: BodyPlan;
    try {
      body = this.#plan(head);
    } catch (error) {
      this.#drop(controller, error);
      return;
    }
    if ('discard' in body) {
      this.#discardError = body.error;
      this.#startDiscard('discard', controller);
      return;
    }
    this.#phase = 'read';
    this.#limit = body.limit;
    this.#onChunk = body.onChunk;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (controller !== this.#controller || this.#settled) return;
    this.#received += chunk.length;
    this.#ctx.attempt.received += chunk.length;
    if (this.#phase !== 'read') {
      if (this.#received > DISCARD_LIMIT) this.#discarded(controller, true);
      return;
    }
    let more: boolean;
    try {
      if (this.#received > this.#limit) throw tooLarge(this.#ctx, 'stopped reading past it');
      more = this.#onChunk(chunk);
    } catch (error) {
      this.#drop(controller, error);
      return;
    }
    if (!more) {
      this.#done();
      controller.abort(new Error('body no longer wanted'));
    }
  }

  onResponseEnd(controller: Dispatcher.DispatchController): void {
    if (controller !== this.#controller || this.#settled) return;
    if (this.#phase !== 'read') {
      this.#discarded(controller, false);
      return;
    }
    const expected = this.#expected;
    if (expected !== undefined && this.#received < expected) {
      this.#fail(truncated(this.#ctx, this.#received, expected, undefined));
      return;
    }
    this.#done();
  }

  onResponseError(controller: Dispatcher.DispatchController | undefined, error: Error): void {
    // No controller: the dispatcher refused the request before it started.
    if ((controller && controller !== this.#controller) || this.#settled) return;
    switch (this.#phase) {
      case 'head':
        this.#fail(requestError(this.#ctx.url, error));
        return;
      case 'read':
        this.#fail(bodyError(this.#ctx, error, this.#received, this.#expected));
        return;
      default:
        // A body being discarded is not needed: its connection is gone, that is all.
        this.#afterDiscard();
    }
  }

  #send(target: Target): void {
    if (this.#settled) return;
    this.#target = target;
    this.#visited?.add(target.href);
    this.#phase = 'head';
    this.#controller = undefined;
    this.#ctx.dispatcher.dispatch(
      { origin: target.origin, path: target.path, method: 'GET', headers: this.#headers },
      this,
    );
  }

  #startDiscard(phase: 'redirect' | 'discard', controller: Dispatcher.DispatchController): void {
    this.#phase = phase;
    const expected = this.#expected;
    if (expected !== undefined && expected > DISCARD_LIMIT) this.#discarded(controller, true);
  }

  /** The body being discarded is over: read to its end, or too big and dropped. */
  #discarded(controller: Dispatcher.DispatchController, drop: boolean): void {
    // No hop is current from here on: the abort's error is not ours to handle.
    this.#controller = undefined;
    if (drop) controller.abort(new Error('body not worth reading'));
    this.#afterDiscard();
  }

  #afterDiscard(): void {
    this.#controller = undefined;
    if (this.#phase === 'discard') {
      if (this.#discardError) this.#fail(this.#discardError);
      else this.#done();
      return;
    }
    let next: Target;
    try {
      this.#visited ??= new Set([this.#target.href]);
      next = nextHop(this.#ctx, this.#target, this.#location, this.#visited);
    } catch (error) {
      this.#fail(error);
      return;
    }
    // Once undici is done with this response (as after an await).
    queueMicrotask(() => {
      this.#send(next);
    });
  }

  #drop(controller: Dispatcher.DispatchController, error: unknown): void {
    this.#fail(error);
    controller.abort(error instanceof Error ? error : new Error('request failed'));
  }

  #done(): void {
    if (this.#settled || !this.#head) return;
    this.#settled = true;
    this.#ctx.attempt.untrack(this);
    this.#resolve({ head: this.#head, received: this.#phase === 'read' ? this.#received : 0 });
  }

  #fail(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#ctx.attempt.untrack(this);
    this.#reject(error);
  }
}

function ignore(): void {
  // Deliberately empty: the promise's callbacks before start().
}

function keepReading(): boolean {
  return true;
}
