import { isAbortError } from '../utils/errors.js';
import {
  downloadImage,
  holdGpu,
  type Downloaded,
  type ImageObserver,
  type ImagePlace,
  type ProcessDeps,
} from './process-image.js';
import type { ImageResult, StoreTask } from '../types.js';

export type StoreDeps = ProcessDeps & {
  /** Known store ids; absent means every id is accepted. */
  readonly storeMaster?: ReadonlySet<string> | undefined;
  /** Where the store master came from, for the error message. */
  readonly storeMasterSource?: string | undefined;
};

/** Receives each image result the moment it is final, in image order. */
export type ImageSink = (imageIndex: number, result: ImageResult) => void;

export type StoreOutcome =
  | { readonly status: 'completed' }
  | { readonly status: 'failed'; readonly error: string }
  /** The signal fired: images not yet reported are still to do. */
  | { readonly status: 'interrupted' };

/**
 * Runs one store: its images strictly in order, from `startAt` (the first
 * image without a result), stopping at the first failure. Every image from
 * `startAt` on is reported to `sink` exactly once — done, failed or skipped —
 * unless the run is interrupted, which leaves the rest unreported.
 *
 * The pipeline is self-contained (a store task and its deps in, a stream of
 * image results out), so it can run on a remote worker unchanged.
 *
 * To overlap download with GPU time, image i+1 is downloaded while image i is
 * on the GPU — only once image i was downloaded and measured, and image i+2
 * waits until image i's result is reported.
 */
export async function runStore(
  task: StoreTask,
  deps: StoreDeps,
  storeSink: ImageSink,
  signal?: AbortSignal,
  startAt = 0,
): Promise<StoreOutcome> {
  const sink = deps.observer ? observed(storeSink, deps.observer) : storeSink;
  if (deps.storeMaster && !deps.storeMaster.has(task.storeId)) {
    skipFrom(task, startAt, sink);
    const source = deps.storeMasterSource ? ` (${deps.storeMasterSource})` : '';
    return { status: 'failed', error: `store ${task.storeId} is not in the store master${source}` };
  }
  try {
    return await runImages(task, deps, sink, signal, startAt);
  } catch (error) {
    if (signal?.aborted || isAbortError(error)) return { status: 'interrupted' };
    throw error;
  }
}

async function runImages(
  task: StoreTask,
  deps: StoreDeps,
  sink: ImageSink,
  signal: AbortSignal | undefined,
  startAt: number,
): Promise<StoreOutcome> {
  const count = task.urls.length;
  const placeOf = (index: number): ImagePlace => ({
    storeId: task.storeId,
    index,
    url: task.urls.at(index) ?? '',
  });
  let current: Promise<Downloaded> | undefined =
    startAt < count ? downloadImage(placeOf(startAt), deps, signal) : undefined;

  for (let index = startAt; current; index++) {
    const downloaded = await current;
    if (!downloaded.ok) {
      sink(index, downloaded.result);
      skipFrom(task, index + 1, sink);
      const position = `image ${index + 1} of ${count}`;
      return {
        status: 'failed',
        error: `${position} (${downloaded.result.url}): ${downloaded.result.error}`,
      };
    }
    const next = index + 1 < count ? downloadImage(placeOf(index + 1), deps, signal) : undefined;
    // If the GPU step is aborted first, the look-ahead's rejection has no reader.
    next?.catch(ignore);
    sink(index, await holdGpu(placeOf(index), downloaded, deps, signal));
    current = next;
  }
  return { status: 'completed' };
}

function skipFrom(task: StoreTask, from: number, sink: ImageSink): void {
  for (let index = from; index < task.urls.length; index++) {
    sink(index, { url: task.urls.at(index) ?? '', status: 'skipped' });
  }
}

function observed(sink: ImageSink, observer: ImageObserver): ImageSink {
  return (index, result) => {
    observer.image(result);
    sink(index, result);
  };
}

function ignore(): void {
  // Deliberately empty: the rejection is observed where the promise is awaited.
}
