/**
 * Keeps a long run of quick work from holding the event loop: `turn()`
 * returns a promise of the next turn of the loop once `sliceMs` passed since
 * the last one, and nothing before. Work that finishes at once — a store
 * refused before any download, one missing from the store master — would
 * otherwise chain from store to store in microtasks, and a server could
 * answer no one until a whole job of them was done.
 */
export type TimeSlice = {
  /** Undefined while the slice lasts; else resolves on the next turn of the event loop. */
  turn(): Promise<void> | undefined;
};

/** @param sliceMs longest stretch of work between two turns of the event loop. */
export function createTimeSlice(sliceMs = 20): TimeSlice {
  let started = performance.now();
  let pending: Promise<void> | undefined;
  return {
    turn() {
      if (pending !== undefined) return pending;
      if (performance.now() - started < sliceMs) return undefined;
      pending = new Promise((resolve) => {
        setImmediate(() => {
          pending = undefined;
          started = performance.now();
          resolve();
        });
      });
      return pending;
    },
  };
}
