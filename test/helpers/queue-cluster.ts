/**
 * Pieces of the queue tests: a job whose every image sits behind its own
 * gate of the fault server (so a test decides how far each store gets),
 * `imgjob worker` processes, and a comparable view of a results document.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll } from 'vitest';

import type { ResultsDocument } from '../../src/types.js';
import { spawnCli, stopAll, type CliRun } from './cli.js';
import { startFaultServer, type FaultServer } from './fault-server.js';
import { requireRedis, startRedis, type RedisServer } from './redis.js';

/** Short locks, so a dead or frozen worker's store moves on within seconds. */
export const SHORT_LOCKS = { IMGJOB_QUEUE_LOCK_MS: '1500', IMGJOB_QUEUE_STALLED_MS: '500' };

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
  await worker.waitForOutput(/ready: /, 'stdout');
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
  readonly redis: RedisServer;
  /** Folders to remove after the file. */
  readonly folders: string[];
};

export function queueTestBed(): QueueTestBed {
  const available = requireRedis();
  let server: FaultServer | undefined;
  let redis: RedisServer | undefined;
  const folders: string[] = [];
  beforeAll(async () => {
    if (!available) return;
    [server, redis] = await Promise.all([startFaultServer(), startRedis()]);
  });
  afterAll(async () => {
    if (!available) return;
    await stopAll();
    await server?.close();
    await redis?.stop();
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
      return started(redis, 'redis-server');
    },
    folders,
  };
}
