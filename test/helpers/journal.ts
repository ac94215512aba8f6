import { JOURNAL_FLUSH_MS } from '../../src/results/writer.js';

/**
 * Resolves once the lines recorded so far are written: the writer's flush
 * timer was set first with the same delay, and Node fires timers of one
 * delay in the order they were set.
 */
export function journalWritten(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, JOURNAL_FLUSH_MS));
}
