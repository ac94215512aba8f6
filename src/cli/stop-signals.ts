import { STOP_SIGNALS, type StopSignal } from './io.js';

/**
 * How every long-running command stops, one way for all: the first of
 * `signals` calls `onStop` (take no new work, save, then end by itself); a
 * second one ends the process at once with 128 + that signal's number, for a
 * stop that takes too long. `beforeQuit` runs just before that exit.
 * Returns the function that takes the handlers off again.
 */
export function onStopSignals(
  signals: readonly StopSignal[],
  onStop: (signal: StopSignal) => void,
  beforeQuit?: (signal: StopSignal) => void,
): () => void {
  let stopping = false;
  const handler = (signal: StopSignal): void => {
    if (stopping) {
      beforeQuit?.(signal);
      process.exit(STOP_SIGNALS[signal]);
    }
    stopping = true;
    onStop(signal);
  };
  for (const signal of signals) process.on(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}
