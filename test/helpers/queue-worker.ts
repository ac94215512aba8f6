/**
 * An imgjob queue worker in this process: `runWorker()` from src/queue, the
 * code `imgjob worker` runs, with its lines captured as the command prints
 * them (`imgjob worker: …`). For the cases where the worker's logic is what
 * counts (which stores it runs, what it reports, what it is told), not the
 * process: a spawned worker costs ~0.5 s of CPU to start. What only a
 * process shows — a signal, kill -9, SIGSTOP, its exit code, its pid — stays
 * with `startWorker()` of ./queue-cluster.js.
 *
 * ```ts
 * const startWorkerHere = workersHere(); // at the top of the file
 * const worker = await startWorkerHere(url, { slots: 2 });
 * await worker.waitForOutput(/completed +store S0/);
 * await worker.stop(); // hands its stores back, as on SIGINT
 * ```
 */
import { afterAll } from 'vitest';

import { DOWNLOAD_DEFAULTS } from '../../src/download/defaults.js';
import { createEventLog } from '../../src/log/event-log.js';
import { parseRedisUrl } from '../../src/queue/redis-url.js';
import { DEFAULT_LOCK_TIMING, runWorker, type LockTiming } from '../../src/queue/worker.js';
import { waitForText, type GrowingOutput } from './text-wait.js';

/** What the queue tests read of a worker, spawned (CliRun) or here. */
export type WorkerOutput = GrowingOutput;

export type WorkerHere = WorkerOutput & {
  /** Hands its running stores back and resolves once it stopped (SIGINT's path). */
  stop(): Promise<void>;
};

export type WorkerHereOptions = {
  /** Stores it runs at once. @default 2 */
  readonly slots?: number;
  /** Its lock and stall check (IMGJOB_QUEUE_LOCK_MS, IMGJOB_QUEUE_STALLED_MS). @default 25 s, 5 s */
  readonly timing?: LockTiming;
};

/**
 * The file's starter of workers here; those a failed case left running stop
 * after the file. Call it at the top of the file: the test files of a vitest
 * worker share this module, each file its own list.
 */
export function workersHere(): (url: string, options?: WorkerHereOptions) => Promise<WorkerHere> {
  const running = new Set<WorkerHere>();
  afterAll(async () => {
    await Promise.all([...running].map((worker) => worker.stop()));
  });
  return (url, options = {}) => startWorkerHere(url, options, running);
}

/** Starts a worker of `slots` stores on `url` here, and resolves once it is taking stores. */
async function startWorkerHere(
  url: string,
  options: WorkerHereOptions,
  running: Set<WorkerHere>,
): Promise<WorkerHere> {
  let stdout = '';
  let failure: Error | undefined;
  let done = false;
  const watchers = new Set<() => void>();
  const changed = (): void => {
    for (const check of watchers) check();
  };
  const log = createEventLog({
    format: 'text',
    sink: (line) => {
      stdout += `imgjob worker: ${line}\n`;
      changed();
    },
  });
  const stopping = new AbortController();
  const finished = runWorker(
    {
      target: parseRedisUrl(url),
      concurrency: options.slots ?? 2,
      perHost: DOWNLOAD_DEFAULTS.perHost,
      // The download threads' module is dist's: here, the downloads run on this thread.
      threads: 1,
      timing: options.timing ?? DEFAULT_LOCK_TIMING,
      log,
    },
    stopping.signal,
  ).then(
    () => undefined,
    (error: unknown) => {
      failure = error instanceof Error ? error : new Error(String(error));
    },
  );
  void finished.finally(() => {
    done = true;
    running.delete(worker);
    changed();
  });

  const worker: WorkerHere = {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return failure?.stack ?? '';
    },
    get done() {
      return done;
    },
    waitForOutput(pattern, stream = 'stdout', waitOptions = {}) {
      return waitForText(
        {
          text: () => (stream === 'stdout' ? stdout : worker.stderr),
          done: () => done,
          watchers,
          describe: () => stdout,
          what: 'the worker',
        },
        pattern,
        waitOptions.timeoutMs,
      );
    },
    async stop() {
      stopping.abort('SIGINT');
      await finished;
      if (failure !== undefined) throw failure;
    },
  };
  running.add(worker);
  await worker.waitForOutput(/ready: /, 'stdout', { timeoutMs: 30_000 });
  return worker;
}
