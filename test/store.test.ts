import { describe, expect, it } from 'vitest';

import type { Sleep } from '../src/utils/sleep.js';
import { runStore, type StoreDeps } from '../src/engine/store.js';
import type { ImageResult, StoreTask } from '../src/types.js';
import { deferredFetch } from './helpers/deferred-fetch.js';

function storeOf(storeId: string, urls: string[]): StoreTask {
  return { storeId, index: 0, visitTimes: [], urls };
}

/** A GPU whose sleeps end only when the test releases them, in order. */
function gatedGpu(): { sleep: Sleep; calls: number[]; release: () => Promise<void> } {
  const waiting: (() => void)[] = [];
  const calls: number[] = [];
  return {
    calls,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        calls.push(ms);
        waiting.push(resolve);
        signal?.addEventListener('abort', () => {
          reject(new DOMException('aborted', 'AbortError'));
        });
      }),
    release: async () => {
      waiting.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

function setup(urls: string[], extra: Partial<StoreDeps> = {}) {
  const fetch = deferredFetch();
  const gpu = gatedGpu();
  const recorded: [number, ImageResult][] = [];
  const deps: StoreDeps = {
    fetchImage: fetch.fetchImage,
    sleep: gpu.sleep,
    gpuDelay: (_store, index) => 100 + index,
    now: () => 0,
    ...extra,
  };
  const controller = new AbortController();
  const run = (startAt = 0) =>
    runStore(
      storeOf('S1', urls),
      deps,
      (index, result) => recorded.push([index, result]),
      controller.signal,
      startAt,
    );
  return { fetch, gpu, recorded, run, controller };
}

describe('runStore', () => {
  it('downloads image i+1 while image i is on the GPU, and never starts i+2 before i is recorded', async () => {
    const { fetch, gpu, recorded, run } = setup(['a', 'b', 'c']);
    const outcome = run();

    await fetch.succeed('a');
    expect(fetch.started).toEqual(['a', 'b']);
    await fetch.succeed('b');
    // b is measured, but a is still on the GPU: c must wait.
    expect(fetch.started).toEqual(['a', 'b']);
    expect(recorded).toEqual([]);

    await gpu.release();
    expect(recorded.map(([index]) => index)).toEqual([0]);
    expect(fetch.started).toEqual(['a', 'b', 'c']);

    await fetch.succeed('c');
    await gpu.release();
    await gpu.release();
    await expect(outcome).resolves.toEqual({ status: 'completed' });
    expect(recorded.map(([index, result]) => [index, result.status])).toEqual([
      [0, 'done'],
      [1, 'done'],
      [2, 'done'],
    ]);
    expect(recorded[0]?.[1]).toMatchObject({ width: 10, height: 20, perimeter: 60, gpu_ms: 100 });
  });

  it('stops the store at the first failed image and never requests the images after it', async () => {
    const { fetch, gpu, recorded, run } = setup(['a', 'b', 'c', 'd']);
    const outcome = run();
    await fetch.succeed('a');
    await fetch.fail('b');
    await gpu.release();

    await expect(outcome).resolves.toEqual({
      status: 'failed',
      error: 'image 2 of 4 (b): HTTP 404 Not Found',
    });
    expect(fetch.started).toEqual(['a', 'b']);
    expect(recorded.map(([index, result]) => [index, result.status])).toEqual([
      [0, 'done'],
      [1, 'failed'],
      [2, 'skipped'],
      [3, 'skipped'],
    ]);
    expect(recorded[1]?.[1]).toMatchObject({
      status: 'failed',
      code: 'E_HTTP_STATUS',
      error: 'HTTP 404 Not Found',
    });
  });

  it('does not look ahead past an image whose download failed', async () => {
    const { fetch, recorded, run } = setup(['a', 'b']);
    const outcome = run();
    await fetch.fail('a');
    await expect(outcome).resolves.toMatchObject({ status: 'failed' });
    expect(fetch.started).toEqual(['a']);
    expect(recorded.map(([, result]) => result.status)).toEqual(['failed', 'skipped']);
  });

  it('fails a store missing from the store master without downloading anything', async () => {
    const { fetch, recorded, run } = setup(['a', 'b'], {
      storeMaster: new Set(['OTHER']),
      storeMasterSource: 'stores.csv',
    });
    await expect(run()).resolves.toEqual({
      status: 'failed',
      error: 'store S1 is not in the store master (stores.csv)',
    });
    expect(fetch.started).toEqual([]);
    expect(recorded.map(([, result]) => result.status)).toEqual(['skipped', 'skipped']);
  });

  it('starts at the first unrecorded image when resumed', async () => {
    const { fetch, gpu, recorded, run } = setup(['a', 'b', 'c']);
    const outcome = run(2);
    await fetch.succeed('c');
    await gpu.release();
    await expect(outcome).resolves.toEqual({ status: 'completed' });
    expect(fetch.started).toEqual(['c']);
    expect(gpu.calls).toEqual([102]);
    expect(recorded.map(([index]) => index)).toEqual([2]);
  });

  it('reports nothing more once interrupted, leaving the rest to resume', async () => {
    const { fetch, recorded, run, controller } = setup(['a', 'b', 'c']);
    const outcome = run();
    await fetch.succeed('a');
    controller.abort();
    await expect(outcome).resolves.toEqual({ status: 'interrupted' });
    expect(recorded).toEqual([]);
  });

  it('completes an empty remainder at once', async () => {
    const { fetch, run } = setup(['a']);
    await expect(run(1)).resolves.toEqual({ status: 'completed' });
    expect(fetch.started).toEqual([]);
  });
});
