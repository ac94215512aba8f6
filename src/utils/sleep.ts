import { setTimeout as delay } from 'node:timers/promises';

/** Sleeps `ms`, or rejects with an AbortError when `signal` fires first. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = async (ms, signal) => {
  if (ms <= 0) {
    signal?.throwIfAborted();
    return;
  }
  await delay(ms, undefined, signal ? { signal } : undefined);
};
