import { getEventListeners } from 'node:events';

import { describe, expect, it } from 'vitest';

import { Controller, runController } from '../src/engine/controller.js';
import { DownloadError } from '../src/utils/errors.js';
import { JobState } from '../src/results/job-state.js';
import type { FetchImage } from '../src/engine/process-image.js';
import type { StoreDeps } from '../src/engine/store.js';
import type { JobInput } from '../src/types.js';
import { jobInputOf, resultOptions } from './helpers/job-input.js';

const OPTIONS = resultOptions({ seed: null });

/**
 * A job whose stores `<job>-S<i>` hold `sizes[i]` images `http://x/<job>/<i>/<j>`;
 * `firstUrls[i]`, when given, replaces store i's images.
 */
function jobOf(name: string, sizes: number[], firstUrls: Record<number, string[]> = {}): JobInput {
  return jobInputOf(
    Object.fromEntries(
      sizes.map((size, index) => [
        `${name}-S${index}`,
        firstUrls[index] ??
          Array.from({ length: size }, (_, image) => `http://x/${name}/${index}/${image}`),
      ]),
    ),
    `${name}.json`,
  );
}

function prepared(input: JobInput) {
  return { input, state: JobState.create(input, `job-${input.source}`, OPTIONS, new Date(0)) };
}

/** Fetches that answer on the next turn; URLs containing `/fail` fail; logs every start. */
function instantFetch(log: string[], inFlight?: { now: number; max: number }): FetchImage {
  return async (url) => {
    log.push(url);
    if (inFlight) inFlight.max = Math.max(inFlight.max, ++inFlight.now);
    await new Promise((resolve) => setImmediate(resolve));
    if (inFlight) inFlight.now--;
    if (url.includes('/fail'))
      throw new DownloadError('E_HTTP_STATUS', 'HTTP 500', { url, status: 500 });
    return { width: 3, height: 4, type: 'png', bytes: 10, attempts: 1 };
  };
}

function depsWith(fetchImage: FetchImage): StoreDeps {
  return { fetchImage, sleep: () => Promise.resolve(), gpuDelay: () => 0, now: () => 0 };
}

const never = new AbortController().signal;

describe('runJob and the controller', () => {
  it('runs a job to completed, every image done, status and counts consistent', async () => {
    const job = prepared(jobOf('a', [2, 3]));
    const [outcome] = await runController(
      [job],
      { concurrency: 4, failFast: false },
      depsWith(instantFetch([])),
      never,
    );
    expect(outcome).toEqual({ status: 'completed', interrupted: false });
    const document = job.state.toDocument();
    expect(document.status).toBe('completed');
    expect(document.error).toBeUndefined();
    expect(document.counts).toMatchObject({ stores: 2, images: 5, done: 5, pending: 0 });
    expect(document.stores.map((store) => store.status)).toEqual(['completed', 'completed']);
  });

  it('leaves no listener on the signal it was given once the job ends (a server stops with one signal for every job)', async () => {
    const serverStop = new AbortController();
    const controller = new Controller(
      { concurrency: 2, failFast: false },
      depsWith(instantFetch([])),
    );
    for (const name of ['a', 'b', 'c']) {
      const outcome = await controller.submit(prepared(jobOf(name, [2, 1])), serverStop.signal);
      expect(outcome).toEqual({ status: 'completed', interrupted: false });
    }
    // Each left one before, holding every store outcome of its job until the server stopped.
    expect(getEventListeners(serverStop.signal, 'abort')).toEqual([]);
  });

  it('completes an empty job at once', async () => {
    const job = prepared(jobOf('empty', []));
    const [outcome] = await runController(
      [job],
      { concurrency: 1, failFast: false },
      depsWith(instantFetch([])),
      never,
    );
    expect(outcome?.status).toBe('completed');
  });

  it('lets a failed store fail the job while the other stores complete', async () => {
    const job = prepared(
      jobOf('b', [3, 2], { 0: ['http://x/fail/0', 'http://x/b/0/0', 'http://x/b/0/1'] }),
    );
    await runController(
      [job],
      { concurrency: 2, failFast: false },
      depsWith(instantFetch([])),
      never,
    );
    const document = job.state.toDocument();
    expect(document.status).toBe('failed');
    expect(document.error).toEqual([
      { store_id: 'b-S0', error: 'image 1 of 3 (http://x/fail/0): HTTP 500' },
    ]);
    expect(document.stores.map((store) => store.status)).toEqual(['failed', 'completed']);
  });

  it('never runs more stores at once than the concurrency limit, over all jobs', async () => {
    const inFlight = { now: 0, max: 0 };
    const jobs = [prepared(jobOf('p', [3, 3, 3, 3])), prepared(jobOf('q', [3, 3, 3]))];
    await runController(
      jobs,
      { concurrency: 3, failFast: false },
      depsWith(instantFetch([], inFlight)),
      never,
    );
    // A store may download one image ahead while the previous one is on the GPU;
    // with a zero GPU that never overlaps here, so in-flight downloads = stores.
    expect(inFlight.max).toBe(3);
  });

  it('starts the longest stores of a job first', async () => {
    const log: string[] = [];
    const job = prepared(jobOf('lpt', [1, 3, 2]));
    await runController(
      [job],
      { concurrency: 1, failFast: false },
      depsWith(instantFetch(log)),
      never,
    );
    expect(log.map((url) => url.split('/')[4])).toEqual(['1', '1', '1', '2', '2', '0']);
  });

  it('takes turns between jobs so a big job does not starve a small one', async () => {
    const log: string[] = [];
    const big = prepared(jobOf('big', [1, 1, 1, 1]));
    const small = prepared(jobOf('small', [1]));
    await runController(
      [big, small],
      { concurrency: 1, failFast: false },
      depsWith(instantFetch(log)),
      never,
    );
    expect(log.map((url) => url.split('/')[3])).toEqual(['big', 'small', 'big', 'big', 'big']);
  });

  it('with fail-fast, skips the rest of the failed job but lets other jobs finish', async () => {
    const log: string[] = [];
    const job = prepared(jobOf('ff', [1, 1, 1], { 0: ['http://x/fail/ff'] }));
    const other = prepared(jobOf('other', [1, 1]));
    const outcomes = await runController(
      [job, other],
      { concurrency: 1, failFast: true },
      depsWith(instantFetch(log)),
      never,
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['failed', 'completed']);
    const document = job.state.toDocument();
    expect(document.stores.map((store) => store.status)).toEqual(['failed', 'skipped', 'skipped']);
    expect(document.error).toEqual([
      { store_id: 'ff-S0', error: 'image 1 of 1 (http://x/fail/ff): HTTP 500' },
    ]);
    expect(document.counts).toMatchObject({ failed: 1, skipped: 2, pending: 0 });
    expect(log.filter((url) => url.includes('/ff/'))).toEqual([]);
  });

  it('with fail-fast, a resumed job that already holds a failed store skips the rest', async () => {
    const log: string[] = [];
    const job = prepared(jobOf('resumed', [1, 2, 1]));
    job.state.recordImage(0, 0, {
      url: 'http://x/resumed/0/0',
      status: 'failed',
      error: 'HTTP 500',
      code: 'E_HTTP_STATUS',
    });
    job.state.setStoreStatus(0, 'failed', 'image 1 of 1: HTTP 500');
    await runController(
      [job],
      { concurrency: 2, failFast: true },
      depsWith(instantFetch(log)),
      never,
    );
    expect(log).toEqual([]);
    expect(job.state.toDocument().stores.map((store) => store.status)).toEqual([
      'failed',
      'skipped',
      'skipped',
    ]);
  });

  it('leaves unstarted stores pending when the run is interrupted, to resume later', async () => {
    const stop = new AbortController();
    const fetchImage: FetchImage = async (_url, signal) => {
      stop.abort();
      await new Promise((resolve) => setImmediate(resolve));
      signal?.throwIfAborted();
      return { width: 1, height: 1, type: 'png', bytes: 1, attempts: 1 };
    };
    const job = prepared(jobOf('int', [2, 2]));
    const controller = new Controller({ concurrency: 1, failFast: false }, depsWith(fetchImage));
    const outcome = await controller.submit(job, stop.signal);
    expect(outcome).toEqual({ status: 'ongoing', interrupted: true });
    const document = job.state.toDocument();
    expect(document.stores.map((store) => store.status)).toEqual(['ongoing', 'pending']);
    expect(document.counts.pending).toBe(4);
  });
});
