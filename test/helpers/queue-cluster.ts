/**
 * Pieces of the queue tests: a job whose every image sits behind its own
 * gate of the fault server (so a test decides how far each store gets),
 * `imgjob worker` processes, and a comparable view of a results document.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect } from 'vitest';

import { loadResults } from '../../src/results/reader.js';
import type { ResultsDocument } from '../../src/types.js';
import { spawnCli, stopAll, waitForResults, type CliResult, type CliRun } from './cli.js';
import { startFaultServer, type FaultServer } from './fault-server.js';
import { runJobHere, type MainResult } from './main.js';
import type { WorkerHere, WorkerHereOptions, WorkerOutput } from './queue-worker.js';
import { requireRedis, startRedis, type RedisServer } from './redis.js';

/** Short locks, so a dead or frozen worker's store moves on within seconds. */
export const SHORT_LOCKS = { IMGJOB_QUEUE_LOCK_MS: '1500', IMGJOB_QUEUE_STALLED_MS: '500' };
/** SHORT_LOCKS for a worker here (test/helpers/queue-worker.ts). */
export const SHORT_LOCK_TIMING = {
  lockDurationMs: Number(SHORT_LOCKS.IMGJOB_QUEUE_LOCK_MS),
  stalledIntervalMs: Number(SHORT_LOCKS.IMGJOB_QUEUE_STALLED_MS),
};

export type GatedJob = {
  readonly dir: string;
  readonly manifest: string;
  readonly out: string;
  /** Gate key of image `index` of store `store` (0-based): `<prefix>-<store>-<index>`. */
  key(store: number, index: number): string;
  /** Requests the server saw for one image. */
  requests(store: number, index: number): number;
  open(store: number, index: number): void;
  openAll(): void;
};

/**
 * A job of `stores` (file names per store, in order) whose images are
 * `/gate/<prefix>-<store>-<index>/<file>`: held until opened.
 */
export function gatedJob(
  server: FaultServer,
  prefix: string,
  stores: readonly (readonly string[])[],
): GatedJob {
  const dir = mkdtempSync(join(tmpdir(), `imgjob-queue-${prefix}-`));
  const key = (store: number, index: number): string => `${prefix}-${store}-${index}`;
  const visits = stores.map((files, store) => ({
    store_id: `S${store}`,
    image_url: files.map((file, index) => server.url(`/gate/${key(store, index)}/${file}`)),
  }));
  const manifest = join(dir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
  const all = stores.flatMap((files, store) => files.map((_, index) => key(store, index)));
  return {
    dir,
    manifest,
    out: join(dir, 'manifest.results.json'),
    key,
    requests: (store, index) => server.requestsTo(`/gate/${key(store, index)}/`).length,
    open: (store, index) => {
      server.gate(key(store, index)).open();
    },
    openAll: () => {
      for (const gate of all) server.gate(gate).open();
    },
  };
}

/** A coordinator (`imgjob run … --queue`) running here, through main(). */
export type RunHere = {
  readonly done: boolean;
  readonly exited: Promise<MainResult>;
  /** The results file once `predicate` holds; fails at once if the run ended first. */
  results(
    path: string,
    predicate: (document: ResultsDocument) => boolean,
  ): Promise<ResultsDocument>;
};

/**
 * `imgjob run <args>` here, not awaited: a coordinator whose decisions are
 * what a case looks at (what it records, hands out, exits with), where no
 * signal or kill reaches it. A spawned one costs ~0.5 s of CPU. Its
 * downloads run on this thread (`--threads 1`), its event lines go to its
 * stderr only while no other command runs here.
 */
export function coordinateHere(args: readonly string[]): RunHere {
  let done = false;
  const exited = runJobHere(args).finally(() => {
    done = true;
  });
  return {
    get done() {
      return done;
    },
    exited,
    results: (path, predicate) =>
      Promise.race([
        waitForResults(path, predicate, { timeoutMs: 30_000, intervalMs: 25 }),
        exited.then((result) => {
          throw new Error(
            `imgjob run ended (${String(result.code)}) before ${path} reached the awaited state:\n${result.stderr}`,
          );
        }),
      ]),
  };
}

/** Starts `imgjob worker` and resolves once it is taking stores. */
export async function startWorker(
  url: string,
  options: {
    readonly slots?: number;
    readonly env?: Record<string, string>;
    /** More `imgjob worker` arguments. */
    readonly args?: readonly string[];
  } = {},
): Promise<CliRun> {
  const args = [
    'worker',
    '--queue',
    url,
    '-c',
    String(options.slots ?? 2),
    ...(options.args ?? []),
  ];
  const worker = spawnCli(args, { env: options.env ?? {} });
  // A loaded machine may take seconds to start a Node process.
  await worker.waitForOutput(/ready: /, 'stdout', { timeoutMs: 30_000 });
  return worker;
}

/**
 * What must equal between two runs of one manifest: every store and image
 * with its result; the gate prefix (in URLs and messages) and the download
 * times left out. Prefixes are letters and digits only.
 */
export function comparable(document: ResultsDocument): unknown {
  const view = {
    status: document.status,
    error: document.error,
    counts: document.counts,
    stores: document.stores.map((store) => ({
      ...store,
      images: store.images.map((image) => {
        const { download_ms: _ms, ...rest } = image as typeof image & { download_ms?: number };
        return rest;
      }),
    })),
  };
  return JSON.parse(JSON.stringify(view).replace(/\/gate\/[a-z0-9]+-/gi, '/gate/')) as unknown;
}

/** The statuses of every image, store by store: `[['done', 'done'], ['failed', 'skipped']]`. */
export function imageStatuses(document: ResultsDocument): string[][] {
  return document.stores.map((store) => store.images.map((image) => image.status));
}

/**
 * What every queue test file needs: a fault server and a real redis-server
 * for the whole file (when Redis is there), every spawned process stopped
 * and every job folder removed after it.
 */
export type QueueTestBed = {
  /** False where redis-server is missing (outside CI: the file skips). */
  readonly available: boolean;
  readonly server: FaultServer;
  /** The file's redis-server (none with `sharedRedis: false`). */
  readonly redis: RedisServer;
  /**
   * A redis-server of one test's own, stopped after the file: for a test that
   * restarts Redis or changes its settings while others of the file run.
   */
  ownRedis(): Promise<RedisServer>;
  /** Folders to remove after the file. */
  readonly folders: string[];
};

export function queueTestBed(
  options: {
    /** False for a file whose every case starts a server of its own (`ownRedis()`). */
    readonly sharedRedis?: boolean;
  } = {},
): QueueTestBed {
  const available = requireRedis();
  let server: FaultServer | undefined;
  let redis: RedisServer | undefined;
  const own: Promise<RedisServer>[] = [];
  const folders: string[] = [];
  beforeAll(async () => {
    if (!available) return;
    [server, redis] = await Promise.all([
      startFaultServer(),
      options.sharedRedis === false ? undefined : startRedis(),
    ]);
  });
  afterAll(async () => {
    if (!available) return;
    await stopAll();
    await server?.close();
    const servers = [...(await Promise.all(own)), ...(redis ? [redis] : [])];
    await Promise.all(servers.map((running) => running.stop()));
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the ${what} is not started (no Redis?)`);
    return value;
  };
  return {
    available,
    get server() {
      return started(server, 'fault server');
    },
    get redis() {
      return started(redis, 'shared redis-server');
    },
    ownRedis() {
      const started = startRedis();
      own.push(started);
      return started;
    },
    folders,
  };
}

/**
 * The fault tests' verdict on what a process printed: every line one short
 * message of imgjob (`imgjob: …`, `imgjob worker: …`), never a stack
 * trace, an error object dump or a password.
 */
export function expectPlainLines(text: string, secret?: string): void {
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    expect(line, text).toMatch(/^imgjob( worker)?: /);
    expect(line, text).not.toMatch(/^\s+at |\{\s*$|\[?Error\b[:\]]|errno|ReplyError/);
    if (secret) expect(line).not.toContain(secret);
  }
}

/**
 * The local run of a job's stores (every gate open): the reference a queued
 * run must equal. Run here through main(): what it gives is its results, and
 * a spawned `imgjob run` costs ~0.5 s of CPU.
 */
export async function localReference(
  bed: QueueTestBed,
  prefix: string,
  stores: readonly (readonly string[])[],
  args: readonly string[],
): Promise<{ readonly code: number | null; readonly document: ResultsDocument }> {
  const local = gatedJob(bed.server, prefix, stores);
  bed.folders.push(local.dir);
  local.openAll();
  const run = await runJobHere(['run', local.manifest, ...args]);
  return { code: run.code, document: await loadResults(local.out) };
}

type Reference = { readonly code: number | null; readonly document: ResultsDocument };

/**
 * The local run of `FAULT_STORES` every fault test of a file compares with:
 * run once, on first use (after the file's redis-server and image server are up).
 */
export function faultReference(bed: QueueTestBed, prefix: string): () => Promise<Reference> {
  let reference: Promise<Reference> | undefined;
  return () => (reference ??= localReference(bed, prefix, FAULT_STORES, FAULT_ARGS));
}

/** Two stores of three images: enough for a fault to land between images of both. */
export const FAULT_STORES = [
  ['image.png', 'image.gif', 'baseline.jpg'],
  ['image.bmp', 'image.webp', 'progressive.jpg'],
] as const;
/** A fixed small GPU delay and seed: the local run and the queued one agree. */
export const FAULT_ARGS = ['--gpu-delay', '20', '--seed', '7', '--retries', '0'] as const;

export type MidRun<Run = CliRun> = {
  readonly url: string;
  readonly job: GatedJob;
  readonly workers: readonly WorkerOutput[];
  /** The coordinator: `imgjob run` spawned (startMidRun), or here (startMidRunHere). */
  readonly run: Run;
};

type StartWorkerHere = (url: string, options: WorkerHereOptions) => Promise<WorkerHere>;

/**
 * A queued run of `FAULT_STORES` on database `db` of the file's redis-server
 * (or on a server of the test's own), stopped mid-run: each store's first
 * image recorded, its second held at its gate. One two-slot worker runs both
 * stores: what the faults test is the worker's and the coordinator's logic,
 * and each spawned worker costs ~0.3-0.5 s of CPU (a run of results from
 * several workers is queue.test.ts's). The worker is a process (all it
 * prints is seen) unless `here` (a file's workersHere()) is given, for a
 * fault that is the coordinator's alone.
 */
export function startMidRun(
  bed: QueueTestBed,
  prefix: string,
  db: number | RedisServer,
  /** More arguments for the coordinator's `imgjob run`. */
  args: readonly string[] = [],
  here?: StartWorkerHere,
): Promise<MidRun> {
  return holdMidRun(bed, prefix, db, here, (job, url) => {
    const run = spawnCli(['run', job.manifest, ...FAULT_ARGS, '--queue', url, ...args]);
    // Generous: the cases of a file run at once, and a loaded machine starts processes slowly.
    const twoDone = (): Promise<unknown> =>
      waitForResults(job.out, (document) => document.counts.done === 2, {
        run,
        timeoutMs: 30_000,
      });
    return { run, twoDone };
  });
}

/**
 * startMidRun with the coordinator and the worker here: for a case about
 * what the coordinator decides, records and answers (its exit code, its
 * lines), where no signal or kill reaches it and Redis stays well.
 */
export function startMidRunHere(
  bed: QueueTestBed,
  prefix: string,
  db: number,
  here: StartWorkerHere,
): Promise<MidRun<RunHere>> {
  return holdMidRun(bed, prefix, db, here, (job, url) => {
    const run = coordinateHere(['run', job.manifest, ...FAULT_ARGS, '--queue', url]);
    const twoDone = (): Promise<unknown> =>
      run.results(job.out, (document) => document.counts.done === 2);
    return { run, twoDone };
  });
}

async function holdMidRun<Run>(
  bed: QueueTestBed,
  prefix: string,
  db: number | RedisServer,
  here: StartWorkerHere | undefined,
  coordinate: (job: GatedJob, url: string) => { run: Run; twoDone: () => Promise<unknown> },
): Promise<MidRun<Run>> {
  const url = typeof db === 'number' ? bed.redis.urlFor(db) : db.url;
  const job = gatedJob(bed.server, prefix, FAULT_STORES);
  bed.folders.push(job.dir);
  const slots = FAULT_STORES.length;
  const workers = [await (here ? here(url, { slots }) : startWorker(url, { slots }))];
  job.open(0, 0);
  job.open(1, 0);
  const { run, twoDone } = coordinate(job, url);
  await Promise.all([
    bed.server.gate(job.key(0, 1)).reached,
    bed.server.gate(job.key(1, 1)).reached,
  ]);
  await twoDone();
  return { url, job, workers, run };
}

/**
 * Opens every gate and checks what the issue asks of every fault: the
 * results equal the local run's, the exit code too (never 70), every worker
 * still runs, and every line printed is one plain message.
 */
export async function expectSameAsLocal(
  midRun: MidRun,
  reference: { readonly code: number | null; readonly document: ResultsDocument },
): Promise<CliResult> {
  midRun.job.openAll();
  const result = await midRun.run.exited;
  expect(result.code, result.stderr).toBe(reference.code);
  expect(comparable(await loadResults(midRun.job.out))).toEqual(comparable(reference.document));
  expectPlainLines(result.stderr);
  for (const worker of midRun.workers) {
    expect(worker.done, worker.stdout + worker.stderr).toBe(false);
    expectPlainLines(worker.stdout);
    expectPlainLines(worker.stderr);
  }
  return result;
}
