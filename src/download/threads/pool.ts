/**
 * Download attempts on `threads` threads: the calling (main) thread and
 * worker threads. The main thread keeps the scheduling (retries, the hosts'
 * turns, the DNS cache) and downloads too (it has little else to do, and a
 * thread less to start and to collect garbage for); an attempt goes to the
 * thread with the fewest in flight for its share of connections among those
 * with room left for its host, and from a worker only its measurement comes
 * back.
 *
 * - Limits over the whole process: `perHost` is split between the threads
 *   (each thread's Agent gets its share), so `perHost: 16` on two threads is
 *   8 + 8 connections to a host. There are never more threads than
 *   connections per host.
 * - Workers only where they pay: a worker starts only when every running
 *   thread is busy, and only once the images seen so far average
 *   `workerMinBytes` or more. For thumbnails, the work per image is the
 *   request, not the body, and a worker would add its messages and a second
 *   heap (~70 MB at 100k images) for little speed. So a job of a few images,
 *   or of small ones, starts no worker. And by measured load (governor.ts):
 *   workers take downloads only while the main thread is short of CPU (it
 *   is saturated and a core is idle) or of connections (all of its share in
 *   use), and keep them only if the job then goes faster; otherwise
 *   they take no new work, so the default never costs more than a thread
 *   would save.
 * - Aborts: the caller's signal rejects the download at once, and an abort
 *   message stops it inside its thread.
 * - A thread that dies (a crash, out of memory) takes no image down with it
 *   silently: each of its downloads in flight is sent to another thread once,
 *   and fails with `E_THREAD` if that one dies too.
 * - A thread is unref'd while it has nothing in flight, so an idle pool
 *   never keeps the process alive.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { DownloadError, describeError } from '../../utils/errors.js';
import type { InFlight } from '../attempt.js';
import type { DnsCache } from '../dns-cache.js';
import type {
  AttemptRunner,
  ConnectorRecipe,
  DownloaderOptions,
  ThreadOptions,
} from '../downloader.js';
import { abortedError, errorCode, fromErrorData, threadCrashed } from '../errors.js';
import { createLocalAttempts } from '../local.js';
import type { Measured } from '../measure.js';
import type { Target } from '../response.js';
import type { Batch, FromThread, ToThread } from './messages.js';
import { ThreadGovernor } from './governor.js';
import { WORKER_URL, type ThreadInit } from './worker-file.js';

/** Mean body size from which workers are started. */
const WORKER_MIN_BYTES = 32 * 1024;
/** Images measured before the mean is trusted. */
const SAMPLE_IMAGES = 8;
/** Tests only: URLs the worker crashes on (see worker.ts) never run on the main thread. */
const FAULT = process.env.IMGJOB_TEST_THREAD_FAULT || undefined;
/** Tests only: workers start by body size alone, whatever the load (see governor.ts). */
const EAGER = process.env.IMGJOB_TEST_EAGER_THREADS === '1';

/** The threads a process gets by default: one per core. */
export function defaultThreads(): number {
  return availableParallelism();
}

type Task = {
  readonly id: number;
  readonly url: string;
  readonly target: Target;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (measured: Measured) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
  /** Threads that died with this task in flight. */
  crashes: number;
  thread: Thread | undefined;
};

type Thread = {
  readonly worker: Worker;
  /** Messages of this turn of the event loop, sent together once it is over. */
  outbox: ToThread[];
  /** Connections per host this thread's Agent may open. */
  readonly share: number;
  readonly tasks: Map<number, Task>;
  /** Attempts in flight per host. */
  readonly hosts: Map<string, number>;
  /** Its attempts running long, as it last reported them. */
  slow: readonly InFlight[];
  dead: boolean;
};

export function createPool(
  options: DownloaderOptions & { readonly threads: number },
  recipe: ConnectorRecipe | undefined,
  dns: DnsCache,
): AttemptRunner {
  return new Pool(options, recipe, dns);
}

class Pool implements AttemptRunner {
  readonly #options: ThreadOptions;
  readonly #recipe: ConnectorRecipe | undefined;
  readonly #dns: DnsCache;
  /** The main thread's own attempts: its connection pool, its share, how many in flight. */
  readonly #main: {
    readonly attempts: AttemptRunner;
    readonly share: number;
    readonly hosts: Map<string, number>;
    inFlight: number;
  };
  /** One slot per worker the pool may run; a slot is empty until needed (or after a crash). */
  readonly #slots: (Thread | undefined)[];
  readonly #shares: readonly number[];
  /** Tasks in flight under each caller signal: one abort listener per signal. */
  readonly #bySignal = new WeakMap<AbortSignal, Set<Task>>();
  readonly #workerMinBytes: number;
  /** Whether workers pay by measured load; none when they start by size alone. */
  readonly #governor: ThreadGovernor | undefined;
  /** Body bytes and images measured so far: their mean decides whether workers pay. */
  #seenBytes = 0;
  #seenImages = 0;
  /** Time the main thread has had all its connections in use: closed spans, and since when. */
  #fullMs = 0;
  #fullSince = 0;
  #nextId = 1;
  #closed = false;

  constructor(
    options: DownloaderOptions & { readonly threads: number },
    recipe: ConnectorRecipe | undefined,
    dns: DnsCache,
  ) {
    const { connect, threads, resolve, workerMinBytes = WORKER_MIN_BYTES, ...rest } = options;
    this.#workerMinBytes = workerMinBytes;
    this.#governor =
      workerMinBytes === 0 || EAGER ? undefined : new ThreadGovernor(() => this.#mainFullMs());
    this.#options = rest;
    this.#recipe = recipe;
    this.#dns = dns;
    const [mainShare = 1, ...workerShares] = splitShares(
      options.perHost,
      Math.min(threads, options.perHost),
    );
    this.#main = {
      attempts: createLocalAttempts({ ...rest, perHost: mainShare }, connect, dns.lookup),
      share: mainShare,
      hosts: new Map(),
      inFlight: 0,
    };
    this.#shares = workerShares;
    this.#slots = this.#shares.map(() => undefined);
  }

  run(url: string, target: Target, signal?: AbortSignal): Promise<Measured> {
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    if (this.#closed) return Promise.reject(closedError(url));
    return new Promise((resolve, reject) => {
      const task: Task = {
        id: this.#nextId++,
        url,
        target,
        signal,
        resolve,
        reject,
        settled: false,
        crashes: 0,
        thread: undefined,
      };
      if (signal) this.#watch(signal).add(task);
      this.#send(task);
    });
  }

  /** The main thread's share, and the workers' while they pay (running or to start). */
  capacity(): number {
    if (!this.#workersPay()) return this.#main.share;
    return this.#shares.reduce((sum, share) => sum + share, this.#main.share);
  }

  inFlight(): InFlight[] {
    const threads = this.#slots.flatMap((thread) => thread?.slow ?? []);
    return [...this.#main.attempts.inFlight(), ...threads];
  }

  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#slots.filter((thread) => thread !== undefined);
    this.#slots.fill(undefined);
    for (const thread of threads) {
      thread.dead = true;
      for (const task of thread.tasks.values()) this.#settle(task, closedError(task.url));
    }
    // Ref'd again: an unref'd thread's exit would not keep the process waiting for it.
    await Promise.all([
      this.#main.attempts.close(),
      ...threads.map((thread) => {
        thread.worker.ref();
        return thread.worker.terminate();
      }),
    ]);
  }

  #send(task: Task): void {
    const thread = this.#pick(task.target.host, FAULT !== undefined && task.url.includes(FAULT));
    if (thread === 'main') {
      this.#runHere(task);
      return;
    }
    task.thread = thread;
    thread.tasks.set(task.id, task);
    count(thread.hosts, task.target.host, 1);
    if (thread.tasks.size === 1) thread.worker.ref();
    post(thread, { type: 'fetch', id: task.id, url: task.url });
  }

  /** On the main thread: the caller's signal goes straight to its downloader. */
  #runHere(task: Task): void {
    const main = this.#main;
    const host = task.target.host;
    task.thread = undefined;
    this.#mainInFlight(1);
    count(main.hosts, host, 1);
    main.attempts.run(task.url, task.target, task.signal).then(
      (measured) => {
        this.#mainInFlight(-1);
        count(main.hosts, host, -1);
        this.#seen(measured);
        this.#settle(task, undefined, measured);
      },
      (error: unknown) => {
        this.#mainInFlight(-1);
        count(main.hosts, host, -1);
        this.#settle(task, error);
      },
    );
  }

  /**
   * The thread with the most room among those with a connection free for
   * `host` (the hosts' turns keep a host's attempts within `perHost`, the
   * sum of the shares, so one always has); a new worker when all are busy
   * and a slot is free.
   */
  #pick(host: string, workerOnly: boolean): Thread | 'main' {
    const main = this.#main;
    const hasRoom = (hosts: Map<string, number>, share: number): boolean =>
      (hosts.get(host) ?? 0) < share;
    let best: Thread | 'main' = 'main';
    let bestLoad =
      workerOnly || !hasRoom(main.hosts, main.share) ? Infinity : main.inFlight / main.share;
    let free = -1;
    // Workers that do not pay now take no new work while the main thread has room.
    const skipWorkers = !workerOnly && bestLoad !== Infinity && !this.#workersPay();
    this.#slots.forEach((thread, index) => {
      if (thread === undefined) {
        if (free < 0) free = index;
        return;
      }
      if (skipWorkers || !hasRoom(thread.hosts, thread.share)) return;
      const load = thread.tasks.size / thread.share;
      if (load < bestLoad) {
        best = thread;
        bestLoad = load;
      }
    });
    const fallback = bestLoad === Infinity && !workerOnly;
    if (bestLoad === 0 || free < 0 || !(workerOnly || fallback || this.#workersPay())) return best;
    return this.#start(free);
  }

  #seen(measured: Measured): void {
    this.#seenBytes += measured.bytes;
    this.#seenImages++;
    this.#governor?.completed(measured.bytes);
  }

  /** Counts the main thread's downloads, and the time it has all its connections in use. */
  #mainInFlight(by: 1 | -1): void {
    const main = this.#main;
    const wasFull = main.inFlight >= main.share;
    main.inFlight += by;
    const isFull = main.inFlight >= main.share;
    if (wasFull === isFull) return;
    const now = performance.now();
    if (isFull) this.#fullSince = now;
    else this.#fullMs += now - this.#fullSince;
  }

  /** How long the main thread has had all its connections in use (ms). */
  #mainFullMs(): number {
    const main = this.#main;
    const open = main.inFlight >= main.share ? performance.now() - this.#fullSince : 0;
    return this.#fullMs + open;
  }

  /**
   * Whether workers pay now: the images so far are big enough, and the
   * measured load says a worker speeds the job up (see the top of the file).
   */
  #workersPay(): boolean {
    if (this.#workerMinBytes === 0) return true;
    return (
      this.#seenImages >= SAMPLE_IMAGES &&
      this.#seenBytes >= this.#workerMinBytes * this.#seenImages &&
      (this.#governor?.workersWanted ?? true)
    );
  }

  #start(slot: number): Thread {
    const share = this.#shares[slot] ?? 1;
    const init: ThreadInit = {
      options: { ...this.#options, perHost: share },
      recipe: this.#recipe,
    };
    const worker = new Worker(WORKER_URL, { workerData: init });
    const thread: Thread = {
      worker,
      outbox: [],
      share,
      tasks: new Map(),
      hosts: new Map(),
      slow: [],
      dead: false,
    };
    this.#slots[slot] = thread;
    worker.unref();
    worker.on('message', (batch: Batch<FromThread>) => {
      for (const message of batch) this.#hear(thread, message);
    });
    worker.on('error', (error) => {
      this.#lost(thread, slot, describeError(error));
    });
    worker.on('exit', (code) => {
      this.#lost(thread, slot, `it exited with code ${code}`);
    });
    return thread;
  }

  #hear(thread: Thread, message: FromThread): void {
    switch (message.type) {
      case 'lookup':
        this.#dns.resolve(message.hostname).then(
          (resolved) => {
            post(thread, { type: 'resolved', id: message.id, resolved, error: undefined });
          },
          (error: unknown) => {
            const failure = {
              message: error instanceof Error ? error.message : String(error),
              code: errorCode(error),
            };
            post(thread, { type: 'resolved', id: message.id, resolved: undefined, error: failure });
          },
        );
        return;
      case 'slow':
        thread.slow = message.attempts;
        return;
      default:
        this.#answer(thread, message);
    }
  }

  #answer(
    thread: Thread,
    message: Extract<FromThread, { id: number; type: 'done' | 'failed' }>,
  ): void {
    const task = thread.tasks.get(message.id);
    if (!task) return;
    thread.tasks.delete(message.id);
    count(thread.hosts, task.target.host, -1);
    // A thread being terminated stays ref'd: the process waits for its exit.
    if (thread.tasks.size === 0 && !thread.dead) thread.worker.unref();
    if (message.type === 'done') {
      this.#seen(message.measured);
      this.#settle(task, undefined, message.measured);
    } else {
      this.#settle(task, fromErrorData(message.error));
    }
  }

  /** A thread died: its downloads go to another thread once, then fail. */
  #lost(thread: Thread, slot: number, detail: string): void {
    if (thread.dead) return;
    thread.dead = true;
    if (this.#slots[slot] === thread) this.#slots[slot] = undefined;
    const orphans = [...thread.tasks.values()];
    thread.tasks.clear();
    thread.hosts.clear();
    for (const task of orphans) {
      if (task.settled) continue;
      task.crashes++;
      if (task.crashes > 1 || this.#closed) this.#settle(task, threadCrashed(task.url, detail));
      else this.#send(task);
    }
  }

  #settle(task: Task, error: unknown, measured?: Measured): void {
    if (task.settled) return;
    task.settled = true;
    if (task.signal) this.#bySignal.get(task.signal)?.delete(task);
    if (measured) task.resolve(measured);
    else task.reject(error);
  }

  #watch(signal: AbortSignal): Set<Task> {
    let tasks = this.#bySignal.get(signal);
    if (tasks) return tasks;
    const watched = new Set<Task>();
    tasks = watched;
    this.#bySignal.set(signal, watched);
    signal.addEventListener(
      'abort',
      () => {
        for (const task of [...watched]) {
          this.#settle(task, abortedError(signal));
          const thread = task.thread;
          // Its thread stops it; the answer that follows is dropped.
          if (thread && !thread.dead) post(thread, { type: 'abort', id: task.id });
        }
      },
      { once: true },
    );
    return tasks;
  }
}

function post(thread: Thread, message: ToThread): void {
  if (thread.outbox.length === 0) {
    queueMicrotask(() => {
      const batch = thread.outbox;
      thread.outbox = [];
      if (!thread.dead) thread.worker.postMessage(batch);
    });
  }
  thread.outbox.push(message);
}

function count(hosts: Map<string, number>, host: string, by: 1 | -1): void {
  const now = (hosts.get(host) ?? 0) + by;
  if (now > 0) hosts.set(host, now);
  else hosts.delete(host);
}

/** `total` connections over `parts` threads, as evenly as whole numbers go. */
export function splitShares(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0),
  );
}

function closedError(url: string): DownloadError {
  return new DownloadError('E_NETWORK', 'downloader closed before the download finished', {
    url,
  });
}
