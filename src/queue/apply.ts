import type { PreparedJob } from '../engine/controller.js';
import { runStore } from '../engine/store.js';
import type { JobState } from '../results/job-state.js';
import type { StoreTask } from '../types.js';
import type { ResultEntry } from './protocol.js';

/**
 * Records one reported entry into the job's state, exactly once: an image
 * that holds a result already, or any entry of a store that has ended, is a
 * duplicate (its idempotency key was seen) and changes nothing. Returns the
 * store's end status when this entry ended it.
 */
export function applyEntry(
  job: PreparedJob,
  entry: ResultEntry,
): 'completed' | 'failed' | undefined {
  const { state, input } = job;
  const task = input.stores[entry.s];
  if (!task || state.isStoreFinished(entry.s)) return undefined;
  if (state.storeStatus(entry.s) === 'pending') state.setStoreStatus(entry.s, 'ongoing');
  if (entry.t === 'image') {
    if (isPending(state, entry.s, entry.i)) state.recordImage(entry.s, entry.i, entry.r);
    return undefined;
  }
  entry.tail.forEach((result, offset) => {
    const index = entry.from + offset;
    if (isPending(state, entry.s, index)) state.recordImage(entry.s, index, result);
  });
  if (entry.status === 'completed' && state.firstPending(entry.s) < task.urls.length) {
    // A report of an end whose images are not all here would lose results: a bug.
    throw new Error(`store ${task.storeId} reported its end with images still pending`);
  }
  state.setStoreStatus(entry.s, entry.status, entry.error);
  return entry.status;
}

/** A store the store master does not know fails at the coordinator, as on one machine. */
export async function storeMasterFailure(
  task: StoreTask,
  state: JobState,
  master: { readonly ids: ReadonlySet<string>; readonly source: string },
): Promise<void> {
  const outcome = await runStore(
    task,
    {
      fetchImage: () =>
        Promise.reject(new Error('a store the store master refuses downloads nothing')),
      sleep: () => Promise.resolve(),
      gpuDelay: () => 0,
      now: () => performance.now(),
      storeMaster: master.ids,
      storeMasterSource: master.source,
    },
    (index, result) => {
      if (isPending(state, task.index, index)) state.recordImage(task.index, index, result);
    },
    undefined,
    state.firstPending(task.index),
  );
  if (outcome.status === 'failed') state.setStoreStatus(task.index, 'failed', outcome.error);
}

// A store's results are recorded in image order, so the images with a result
// are exactly those before its first pending one.
function isPending(state: JobState, store: number, index: number): boolean {
  return state.imageUrl(store, index) !== undefined && index >= state.firstPending(store);
}
