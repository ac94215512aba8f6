import { createHash } from 'node:crypto';

import { realSleep, type Sleep } from '../utils/sleep.js';
import type { GpuDelay, ResolvedRunOptions, ResultOptions } from '../types.js';
import { createGpuDelayPicker, formatGpuDelay } from './gpu-delay.js';
import type { FetchImage, ImageObserver } from './process-image.js';
import type { StoreDeps } from './store.js';

/*
 * One job setup for `run` and `serve`: the dependencies every store is
 * given and the options a job records, so both process and resume a job the
 * same way.
 */

/** A store master: the known store ids, and where they came from (for messages). */
export type StoreMaster = { readonly ids: ReadonlySet<string>; readonly source: string };

/** The dependencies every store of a run or of the server is given. */
export function createStoreDeps(setup: {
  readonly fetchImage: FetchImage;
  readonly gpuDelay: GpuDelay;
  readonly seed?: number | undefined;
  readonly storeMaster?: StoreMaster | undefined;
  /** Replaces the GPU sleep (tests, benchmarks). */
  readonly sleep?: Sleep | undefined;
  /** Counts downloads and results for the metrics. */
  readonly observer?: ImageObserver | undefined;
}): StoreDeps {
  return {
    fetchImage: setup.fetchImage,
    sleep: setup.sleep ?? realSleep,
    gpuDelay: createGpuDelayPicker(setup.gpuDelay, setup.seed),
    now: () => performance.now(),
    storeMaster: setup.storeMaster?.ids,
    storeMasterSource: setup.storeMaster?.source,
    observer: setup.observer,
  };
}

/**
 * What a job records as the options that change its results. A resume (run)
 * or a restart (serve) compares them with the current ones.
 */
export function resultOptionsOf(
  options: Pick<ResolvedRunOptions, 'gpuDelay' | 'seed' | 'headerOnly' | 'maxBytes'>,
  storeMasterIds: ReadonlySet<string> | undefined,
): ResultOptions {
  return {
    gpu_delay: formatGpuDelay(options.gpuDelay),
    seed: options.seed ?? null,
    header_only: options.headerOnly,
    max_bytes: options.maxBytes,
    store_master: storeMasterIds
      ? createHash('sha256')
          .update([...storeMasterIds].sort().join('\n'))
          .digest('hex')
      : null,
  };
}

/** One `key was X, now Y` line per option that differs. */
export function optionChanges(recorded: ResultOptions, current: ResultOptions): string[] {
  return (Object.keys(current) as (keyof ResultOptions)[])
    .filter((key) => recorded[key] !== current[key])
    .map(
      (key) => `${key} was ${JSON.stringify(recorded[key])}, now ${JSON.stringify(current[key])}`,
    );
}
