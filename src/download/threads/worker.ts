/**
 * A download thread: its own undici Agent (its share of `perHost`), the same
 * downloads, deadlines and retries as on the main thread, and one message
 * back per image: the measurement or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';

import type { buildConnector as undiciConnector } from 'undici';

import { toErrorData } from '../errors.js';
import { createLocalDownloader } from '../local.js';
import type { Batch, FromThread, ThreadInit, ToThread } from './messages.js';

const port = parentPort;
if (!port) throw new Error('src/download/threads/worker.ts runs as a worker thread only');

const init = workerData as ThreadInit;
const connect = init.recipe ? await connectorOf(init.recipe) : undefined;
const downloader = createLocalDownloader(init.options, connect);
/** Downloads in flight, by the id the main thread gave them. */
const running = new Map<number, AbortController>();
const fault = injectedFault();

/** Answers of this turn of the event loop, sent together at its end. */
let answers: FromThread[] = [];

port.on('message', (batch: Batch<ToThread>) => {
  for (const message of batch) take(message);
});

function take(message: ToThread): void {
  if (message.type === 'abort') {
    running.get(message.id)?.abort(new Error('stopped by the main thread'));
    return;
  }
  const { id, url } = message;
  if (fault !== undefined && url.includes(fault)) crash();
  const stop = new AbortController();
  running.set(id, stop);
  downloader.fetchImage(url, stop.signal).then(
    (measurement) => {
      reply({ id, ok: true, measurement });
    },
    (error: unknown) => {
      reply({ id, ok: false, error: toErrorData(error) });
    },
  );

  function reply(answer: FromThread): void {
    running.delete(id);
    if (answers.length === 0) setImmediate(flush);
    answers.push(answer);
  }
}

function flush(): void {
  const batch = answers;
  answers = [];
  port?.postMessage(batch);
}

async function connectorOf(
  recipe: NonNullable<ThreadInit['recipe']>,
): Promise<undiciConnector.connector> {
  const module = (await import(recipe.module)) as Record<string, unknown>;
  const build = module[recipe.exportName];
  if (typeof build !== 'function') {
    throw new TypeError(`${recipe.module} has no connector factory ${recipe.exportName}`);
  }
  return (build as (options: unknown) => undiciConnector.connector)(recipe.options);
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
