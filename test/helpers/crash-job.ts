/**
 * The job the crash tests kill and resume (crash.test.ts, the kill points;
 * crash-windows.test.ts, the rest): 4 stores, 10 images, every image behind
 * its own gate of a fault server, and the uninterrupted reference run every
 * resumed run must equal.
 *
 * ```ts
 * const jobs = useCrashJobs(); // beforeAll: the server and the reference run
 * const job = jobs.newJob('k0');
 * jobs.openGates(job, ['a0']);
 * const run = spawnCli(['run', job.manifest, ...ARGS]);
 * await jobs.heldAt(job, ['a1', 'b0', 'c0', 'd0']);
 * ```
 */
import { appendFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect } from 'vitest';

import { loadResults } from '../../src/results/reader.js';
import { journalPathOf } from '../../src/results/paths.js';
import type { ImageStatus, ResultsDocument } from '../../src/types.js';
import { stopAll } from './cli.js';
import { runJobHere } from './main.js';
import { startFaultServer, type FaultServer } from './fault-server.js';

export const SEED = 7;
/** A range, so `gpu_ms` differs per image and shows that the seed is honoured. */
export const GPU_DELAY = { min: 0, max: 20 };
/** `--retries 0`: a stray retry would show up as a second request, not hide. */
export const ARGS =
  `--gpu-delay ${GPU_DELAY.min}-${GPU_DELAY.max} --seed ${SEED} --retries 0`.split(' ');

/**
 * The job: 4 stores, 10 images (S1 spans two visits). `c1` is an HTML page,
 * so S3 fails there and `c2` is skipped; the job ends `failed` (exit 1).
 */
const VISITS = [
  { store: 'S1', images: { a0: 'image.png', a1: 'image.gif' } },
  { store: 'S2', images: { b0: 'baseline.jpg', b1: 'image.webp', b2: 'image.bmp' } },
  { store: 'S3', images: { c0: 'image.tiff', c1: 'not-an-image.html', c2: 'image.png' } },
  { store: 'S1', images: { a2: 'progressive.jpg' } },
  { store: 'S4', images: { d0: 'image.svg' } },
] as const;
export const ALL_KEYS = VISITS.flatMap((visit) => Object.keys(visit.images)).sort();

export type Job = {
  /** Makes this job's gates and URLs its own: `/gate/<prefix>-<key>/<file>`. */
  readonly prefix: string;
  readonly dir: string;
  readonly manifest: string;
  /** The default results file, beside the manifest. */
  readonly out: string;
};

export type Reference = {
  readonly job: Job;
  readonly document: ResultsDocument;
  /** Its stores as `comparable()` gives them. */
  readonly stores: unknown;
};

export type CrashJobs = {
  readonly server: FaultServer;
  /** The uninterrupted run (in this process), every gate open. */
  readonly reference: Reference;
  /** A folder removed after the file. */
  readonly tempFolder: () => string;
  /** A new job whose gates are all closed. */
  readonly newJob: (prefix: string) => Job;
  /** Opens the gates of `keys` (all by default). */
  readonly openGates: (job: Job, keys?: readonly string[]) => void;
  /** Waits until the server saw a request of each key, counting from request number `since`. */
  readonly heldAt: (job: Job, keys: readonly string[], since?: number) => Promise<void>;
  /** Keys of this job's requests since request number `from`, sorted. */
  readonly requestedKeys: (job: Job, from?: number) => string[];
};

/**
 * Starts the fault server and runs the reference job in `beforeAll`; after
 * the file, kills the children a failed test left held at a gate (not in
 * afterEach: tests of a concurrent group would kill each other's), stops
 * the server and removes the folders.
 */
export function useCrashJobs(): CrashJobs {
  let server: FaultServer | undefined;
  let reference: Reference | undefined;
  const folders: string[] = [];

  const jobs: CrashJobs = {
    get server() {
      if (!server) throw new Error('useCrashJobs(): the server starts in beforeAll');
      return server;
    },
    get reference() {
      if (!reference) throw new Error('useCrashJobs(): the reference run is made in beforeAll');
      return reference;
    },
    tempFolder: () => {
      const folder = mkdtempSync(join(tmpdir(), 'imgjob-crash-'));
      folders.push(folder);
      return folder;
    },
    newJob: (prefix) => {
      const dir = jobs.tempFolder();
      const manifest = join(dir, 'job.json');
      const visits = VISITS.map((visit) => ({
        store_id: visit.store,
        image_url: Object.entries(visit.images).map(([key, file]) =>
          jobs.server.url(`/gate/${prefix}-${key}/${file}`),
        ),
      }));
      writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }, null, 2));
      return { prefix, dir, manifest, out: join(dir, 'job.results.json') };
    },
    openGates: (job, keys = ALL_KEYS) => {
      for (const key of keys) jobs.server.gate(`${job.prefix}-${key}`).open();
    },
    heldAt: async (job, keys, since = 0) => {
      await jobs.server.until((requests) =>
        keys.every((key) =>
          requests.slice(since).some((r) => r.path.startsWith(`/gate/${job.prefix}-${key}/`)),
        ),
      );
    },
    requestedKeys: (job, from = 0) => {
      return jobs.server.requests
        .slice(from)
        .filter((r) => r.path.startsWith(`/gate/${job.prefix}-`))
        .map((r) => keyOfPath(r.path))
        .sort();
    },
  };

  beforeAll(async () => {
    server = await startFaultServer();
    const job = jobs.newJob('ref');
    jobs.openGates(job);
    const result = await runJobHere(['run', job.manifest, ...ARGS]);
    expect(result.code, result.stderr).toBe(1);
    const document = await loadResults(job.out);
    reference = { job, document, stores: comparable(document, job.prefix) };
  });

  afterAll(async () => {
    await stopAll();
    await server?.close();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  return jobs;
}

function keyOfPath(path: string): string {
  const gate = path.split('/')[2] ?? '';
  return gate.slice(gate.lastIndexOf('-') + 1);
}

export function keyOfUrl(url: string): string {
  return keyOfPath(new URL(url).pathname);
}

export function statusOf(document: ResultsDocument, key: string): ImageStatus | undefined {
  for (const store of document.stores) {
    for (const image of store.images) if (keyOfUrl(image.url) === key) return image.status;
  }
  return undefined;
}

/** Keys of the images that have a result, sorted. */
export function recordedKeys(document: ResultsDocument): string[] {
  return document.stores
    .flatMap((store) => store.images)
    .filter((image) => image.status !== 'pending')
    .map((image) => keyOfUrl(image.url))
    .sort();
}

export function unique(keys: readonly string[]): string[] {
  return [...new Set(keys)].sort();
}

/** Stores with this job's URLs made neutral and wall times dropped, to compare runs. */
export function comparable(document: ResultsDocument, prefix: string): unknown {
  const text = JSON.stringify(document.stores).replaceAll(`/gate/${prefix}-`, '/gate/');
  return JSON.parse(text, (key, value: unknown) => (key === 'download_ms' ? undefined : value));
}

/** Appends half a journal line, as a crash in the middle of a write leaves it. */
export function tearJournal(results: string): void {
  appendFileSync(journalPathOf(results), '{"t":"image","s":1,"i":2,"r":{"url":"http://127.0');
}

/** Every image holds one result, the job is over, the journal is gone. */
export async function expectFinished(job: Job): Promise<ResultsDocument> {
  const document = await loadResults(job.out);
  expect(document.status).toBe('failed');
  expect(document.counts).toMatchObject({ images: 10, pending: 0, done: 8, failed: 1, skipped: 1 });
  expect(
    document.stores.flatMap((store) => store.images.map((image) => keyOfUrl(image.url))).sort(),
  ).toEqual(ALL_KEYS);
  expect(document.interrupted).toBeUndefined();
  expect(document.finished_at).toEqual(expect.any(String));
  expect(existsSync(journalPathOf(job.out))).toBe(false);
  return document;
}
