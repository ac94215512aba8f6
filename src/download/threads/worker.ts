/**
 * A download thread: its own connection pool (its share of `perHost`), the
 * same attempts, deadlines and speed limit as on the main thread, and one
 * message back per attempt: the measurement or the error. Names are looked
 * up in the main thread's DNS cache; once a second it tells the main thread
 * which of its attempts have been running for a while.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { connectorFromRecipe } from '../address-guard.js';
import { SLOW_AFTER_MS, type ConnectorRecipe, type ThreadOptions } from '../downloader.js';
import { useResolve, type Resolved } from '../dns-cache.js';
import { toErrorData } from '../errors.js';
import { createLocalAttempts } from '../local.js';
import { parseTarget } from '../response.js';
import type { Batch, FromThread, ToThread } from './messages.js';

/** What a thread starts with (its `workerData`): its share of the limits, and its connector's recipe. */
export type ThreadInit = {
  readonly options: ThreadOptions;
  readonly recipe: ConnectorRecipe | undefined;
};

const port = parentPort;
if (!port) throw new Error('src/download/threads/worker.ts runs as a worker thread only');

const init = workerData as ThreadInit;
/** Lookups sent to the main thread, by id. */
const lookups = new Map<number, { resolve(r: Resolved): void; reject(e: Error): void }>();
let nextLookup = 1;
useResolve(
  (hostname) =>
    new Promise((resolve, reject) => {
      const id = nextLookup++;
      lookups.set(id, { resolve, reject });
      send({ type: 'lookup', id, hostname });
    }),
);
const connect = init.recipe ? connectorFromRecipe(init.recipe) : undefined;
const attempts = createLocalAttempts(init.options, connect);
/** Attempts in flight, by the id the main thread gave them. */
const running = new Map<number, AbortController>();
const fault = injectedFault();

/** Messages of this turn of the event loop, sent together at its end. */
let outbox: FromThread[] = [];
let reportedSlow = false;

port.on('message', (batch: Batch<ToThread>) => {
  for (const message of batch) take(message);
});

setInterval(reportSlow, 1000).unref();

function take(message: ToThread): void {
  switch (message.type) {
    case 'abort':
      running.get(message.id)?.abort(new Error('stopped by the main thread'));
      return;
    case 'resolved': {
      const waiting = lookups.get(message.id);
      lookups.delete(message.id);
      if (message.resolved) waiting?.resolve(message.resolved);
      else waiting?.reject(lookupError(message.error));
      return;
    }
    default:
      run(message.id, message.url);
  }
}

function run(id: number, url: string): void {
  if (fault !== undefined && url.includes(fault)) crash();
  const target = parseTarget(url);
  if (!target) throw new Error(`the main thread sent a URL that is not http(s): ${url}`);
  const stop = new AbortController();
  running.set(id, stop);
  attempts.run(url, target, stop.signal).then(
    (measured) => {
      running.delete(id);
      send({ type: 'done', id, measured });
    },
    (error: unknown) => {
      running.delete(id);
      send({ type: 'failed', id, error: toErrorData(error) });
    },
  );
}

/** The attempts running long, for the main thread's progress line; nothing while there are none. */
function reportSlow(): void {
  const now = Date.now();
  const slow = attempts.inFlight().filter((attempt) => now - attempt.startedAt >= SLOW_AFTER_MS);
  if (slow.length === 0 && !reportedSlow) return;
  reportedSlow = slow.length > 0;
  slow.sort((a, b) => a.startedAt - b.startedAt);
  send({ type: 'slow', attempts: slow.slice(0, 5) });
}

function send(message: FromThread): void {
  if (outbox.length === 0) setImmediate(flush);
  outbox.push(message);
}

function flush(): void {
  const batch = outbox;
  outbox = [];
  port?.postMessage(batch);
}

function lookupError(data: { message: string; code: string | undefined } | undefined): Error {
  const error: NodeJS.ErrnoException = new Error(data?.message ?? 'lookup failed');
  if (data?.code !== undefined) error.code = data.code;
  return error;
}

/**
 * Tests only: `IMGJOB_TEST_THREAD_FAULT=<text>` makes the thread die (an
 * uncaught exception) when it is given a URL that contains `<text>`.
 */
function injectedFault(): string | undefined {
  const text = process.env.IMGJOB_TEST_THREAD_FAULT;
  return text ? text : undefined;
}

function crash(): void {
  setImmediate(() => {
    throw new Error('injected thread fault (IMGJOB_TEST_THREAD_FAULT)');
  });
}
