/**
 * Downloads on worker threads (`--threads`), end to end through the built
 * CLI, and the pool itself through the built downloader (a worker thread
 * runs built JavaScript): the same results as on one thread, the per-host
 * limit over all threads, aborts that reach a thread, a crashed thread that
 * fails its image instead of hanging the job, and signals with threads busy.
 * What a thread does runs in a spawned `imgjob run` (the threads' module is
 * dist's); a run on one thread (the reference, a resume) runs here, through
 * main(). The runs' cases go at once, each on URLs of its own.
 *
 * @module-tag e2e
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { runCli, spawnCli, stopAll, waitForResults } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runJobHere } from './helpers/main.js';
import type { ImageResult, ResultsDocument } from '../src/types.js';

type BuiltDownloader = typeof import('../src/download/downloader.js');
type BuiltGuard = typeof import('../src/download/address-guard.js');

let server: FaultServer;
let dir: string;
let built: BuiltDownloader;
let builtGuard: BuiltGuard;

beforeAll(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'imgjob-threads-'));
  // The pool's threads run dist/download/threads/worker.js: test the built downloader.
  built = (await import(
    new URL('../dist/download/downloader.js', import.meta.url).href
  )) as BuiltDownloader;
  builtGuard = (await import(
    new URL('../dist/download/address-guard.js', import.meta.url).href
  )) as BuiltGuard;
});
afterAll(async () => {
  // The cases run at once: the children a failed one left behind are stopped after them all.
  await stopAll();
  await server.close();
});

// Several runs at once on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });
/** A wait on a results file: the runs go at once, a loaded machine starts each slowly. */
const WAIT = { timeoutMs: 30_000, intervalMs: 25 };

const FILES = ['image.png', 'baseline.jpg', 'image.gif', 'image-lossless.webp', 'big-exif.jpg'];
/** Workers start once the images seen average 32 KiB; this one is 100 KB. */
const BIG = '/pad/100000/image.png';

/** Workers start by body size alone, whatever the machine's load (the pool's governor is off). */
const EAGER = { env: { IMGJOB_TEST_EAGER_THREADS: '1' } };

/** One connection on the main thread, one on a worker: of two downloads at once, the second goes to the worker. */
const TWO_THREADS = {
  timeoutMs: 10_000,
  maxBytes: 1_000_000,
  retries: 0,
  headerOnly: false,
  perHost: 2,
  threads: 2,
  workerMinBytes: 0,
};

/** `stores` stores of `perStore` images each, URLs from `path(store, image)`. */
function writeManifest(
  name: string,
  stores: number,
  perStore: number,
  path: (store: number, image: number) => string,
): string {
  const visits = Array.from({ length: stores }, (_, store) => ({
    store_id: `S${store}`,
    image_url: Array.from({ length: perStore }, (_, image) => {
      const where = path(store, image);
      return where.startsWith('http') ? where : server.url(where);
    }),
  }));
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ count: visits.length, visits }));
  return file;
}

function readResults(path: string): ResultsDocument {
  return JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
}

/** The results without what depends on timing. */
function comparable(document: ResultsDocument): unknown {
  return document.stores.map((store) => ({
    ...store,
    images: store.images.map((image) => {
      if (image.status !== 'done') return image;
      const { download_ms: _ms, ...rest } = image;
      return rest;
    }),
  }));
}

describe('imgjob run --threads', () => {
  it.concurrent('records the same results on 3 threads as on 1 for the same --seed', async () => {
    const manifest = writeManifest('same', 12, 5, (store, image) => {
      const name = FILES[(store + image) % FILES.length] ?? 'image.png';
      // Every other image padded to 100 KB: big bodies make the pool start its workers.
      return image % 2
        ? `/pad/100000/${name}?k=same&s=${store}&i=${image}`
        : `/img/${name}?k=same&s=${store}&i=${image}`;
    });
    const args = (threads: string): string[] => {
      const out = join(dir, `same-${threads}.results.json`);
      return [
        'run',
        manifest,
        '-o',
        out,
        '--force',
        '--seed',
        '7',
        '--gpu-delay',
        '0-3',
        '-c',
        '8',
      ];
    };
    // One thread is the main thread's downloads, here as in a process of its own.
    const [onThread, onThreads] = await Promise.all([
      runJobHere(args('1')),
      runCli([...args('3'), '--threads', '3'], EAGER),
    ]);
    expect(onThread.code, onThread.stderr).toBe(0);
    expect(onThreads.code, onThreads.stderr).toBe(0);
    const [one, three] = ['1', '3'].map((threads) =>
      readResults(join(dir, `same-${threads}.results.json`)),
    );
    expect(one?.counts.done).toBe(60);
    expect(comparable(three as ResultsDocument)).toEqual(comparable(one as ResultsDocument));
  });

  it.concurrent(
    'keeps --per-host over all threads: 3 connections in all on 2 threads',
    async () => {
      // A server of its own: it counts every connection it ever accepted.
      const own = await startFaultServer();
      const gate = own.gate('ph');
      // Image 0 of each store is big (so workers start), images 1 and 2 wait at a gate.
      const manifest = writeManifest('per-host', 20, 3, (store, image) =>
        own.url(image === 0 ? `${BIG}?s=${store}` : `/gate/ph/image.png?s=${store}&i=${image}`),
      );
      const out = join(dir, 'per-host.results.json');
      const run = spawnCli(
        [
          'run',
          manifest,
          '-o',
          out,
          '--force',
          '--gpu-delay',
          '0',
          '-c',
          '20',
          '--per-host',
          '3',
          '--threads',
          '2',
        ],
        EAGER,
      );
      try {
        // Twenty stores want a connection each: the limit alone holds them back.
        await own.until(
          (requests) =>
            requests.filter((r) => r.path.startsWith('/gate/') && r.state === 'open').length >= 3,
        );
        gate.open();
        const result = await run.exited;
        expect(result.code, result.stderr).toBe(0);
        expect(readResults(out).counts.done).toBe(60);
        expect(own.requests).toHaveLength(60);
        expect(own.connections).toBeLessThanOrEqual(3);
      } finally {
        await own.close();
      }
    },
  );

  it.concurrent(
    'fails the image of a thread that crashes (E_THREAD) and finishes the job',
    async () => {
      // One store at a time: only the crashing image is in flight when its thread dies
      // (twice: once, then again on the thread it is retried on).
      const manifest = writeManifest('crash', 4, 3, (store, image) =>
        store === 1 && image === 1
          ? '/img/image.png?crash-me'
          : `/img/image.png?s=${store}&i=${image}`,
      );
      const out = join(dir, 'crash.results.json');
      const result = await runCli(
        ['run', manifest, '-o', out, '--force', '--gpu-delay', '0', '-c', '1', '--threads', '2'],
        { env: { IMGJOB_TEST_THREAD_FAULT: 'crash-me' } },
      );
      expect(result.code, result.stderr).toBe(1);
      const document = readResults(out);
      const crashed = document.stores[1];
      expect(crashed?.status).toBe('failed');
      expect(crashed?.images.map((image) => image.status)).toEqual(['done', 'failed', 'skipped']);
      expect(crashed?.images[1]).toMatchObject({ status: 'failed', code: 'E_THREAD' });
      // Every other store completed, the images caught in a crashed thread included.
      expect(document.stores.filter((store) => store.status === 'completed')).toHaveLength(3);
      expect(server.requestsTo('/img/image.png?crash-me')).toHaveLength(0);
    },
  );

  it.concurrent.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)(
    'stopped by %s with threads busy, then resumed: exactly one result per image',
    async (signal) => {
      const key = `sig-${signal}`;
      const gate = server.gate(key);
      // Images 0–3 of a store are free (and big: the workers start), image 4 waits at the
      // gate: each store gets four results, then stalls with a download in some thread.
      const manifest = writeManifest(key, 8, 6, (store, image) =>
        image === 4 ? `/gate/${key}/image.png?s=${store}` : `${BIG}?k=${key}&s=${store}&i=${image}`,
      );
      const out = join(dir, `${key}.results.json`);
      const args = ['run', manifest, '-o', out, '--gpu-delay', '0', '-c', '8'];
      const run = spawnCli([...args, '--threads', '3', '--force'], EAGER);
      await waitForResults(out, (doc) => doc.counts.done >= 32, { run, ...WAIT });
      await server.until(
        (requests) => requests.filter((r) => r.path.startsWith(`/gate/${key}/`)).length >= 8,
      );
      const stopped = await run.kill(signal);
      if (signal === 'SIGKILL') expect(stopped.signal).toBe('SIGKILL');
      else expect(stopped.code, stopped.stderr).toBe(signal === 'SIGINT' ? 130 : 143);
      // The held downloads were stopped in their threads: the server saw them go.
      await server.until((requests) =>
        requests.filter((r) => r.path.startsWith(`/gate/${key}/`)).every((r) => r.state !== 'open'),
      );
      gate.open();
      // What is checked is the state the stopped run left: a resume on one thread reads it.
      const resumed = await runJobHere([...args, '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      const document = readResults(out);
      const images = document.stores.flatMap((store) => store.images);
      expect(images).toHaveLength(48);
      expect(images.every((image: ImageResult) => image.status === 'done')).toBe(true);
      // Recorded work was not redone: each free image was fetched once.
      const free = server.requestsTo(`${BIG}?k=${key}&`);
      expect(new Set(free.map((r) => r.path)).size).toBe(free.length);
    },
  );
});

describe('the thread pool', () => {
  // After the runs: these count every request the server saw.
  beforeEach(() => {
    server.reset();
  });

  it('starts no worker for small images: all downloads stay on the main thread', async () => {
    const downloader = built.createDownloader({
      timeoutMs: 10_000,
      maxBytes: 1_000_000,
      retries: 0,
      headerOnly: false,
      perHost: 4,
      threads: 4,
    });
    try {
      const urls = Array.from({ length: 40 }, (_, i) => server.url(`/img/image.png?small=${i}`));
      await Promise.all(urls.map((url) => downloader.fetchImage(url)));
      // One Agent (the main thread's share: 1 of 4) served them all over one connection.
      expect(new Set(server.requestsTo('/img/image.png?small=').map((r) => r.socket)).size).toBe(1);
    } finally {
      await downloader.close();
    }
  });

  it('stops a download inside its thread when the caller aborts', async () => {
    server.gate('abort'); // never opened
    const downloader = built.createDownloader(TWO_THREADS);
    try {
      const stop = new AbortController();
      const settled = ['a', 'b'].map((name) =>
        downloader
          .fetchImage(server.url(`/gate/abort/${name}.png`), stop.signal)
          .catch((error: unknown) => error),
      );
      await server.until((requests) => requests.length === 2);
      expect(new Set(server.requests.map((r) => r.socket)).size).toBe(2);
      stop.abort(new Error('test'));
      for (const error of await Promise.all(settled)) {
        expect(error).toMatchObject({ code: 'E_ABORTED' });
      }
      // The pool is still open: only each thread's own request could close its connection.
      await server.until((requests) => requests.every((r) => r.state === 'aborted'));
    } finally {
      await downloader.close();
    }
  });
  it('builds the address guard in each thread from its recipe: refused there too, allowed there too', async () => {
    const { createAddressGuard, guardedConnector } = builtGuard;
    const refusing = built.createDownloader({
      ...TWO_THREADS,
      connect: guardedConnector(createAddressGuard()),
    });
    try {
      const urls = ['a', 'b'].map((name) => server.url(`/img/image.png?refused=${name}`));
      const errors = await Promise.all(
        urls.map((url) => refusing.fetchImage(url).catch((error: unknown) => error)),
      );
      for (const error of errors) expect(error).toMatchObject({ code: 'E_ADDRESS_REFUSED' });
      expect(server.requests).toHaveLength(0);
    } finally {
      await refusing.close();
    }
    const allowing = built.createDownloader({
      ...TWO_THREADS,
      connect: guardedConnector(createAddressGuard({ allow: ['127.0.0.1'] })),
    });
    try {
      const gate = server.gate('guard');
      const done = ['a', 'b'].map((name) =>
        allowing.fetchImage(server.url(`/gate/guard/image.png?allowed=${name}`)),
      );
      // Both threads' connections reached the server, each through its own guard.
      await server.until((requests) => requests.length === 2);
      expect(new Set(server.requests.map((r) => r.socket)).size).toBe(2);
      gate.open();
      for (const measured of await Promise.all(done)) expect(measured.width).toBeGreaterThan(0);
    } finally {
      await allowing.close();
    }
  });
});
