/**
 * The setup file of the time-bound files (vitest project `alone`): they
 * start once `npm test`'s checks have ended, so that no type check or
 * prettier competes with what they measure. `scripts/test.js` runs all
 * the test files in one vitest, the time-bound ones last (a group of their
 * own), and holds a local socket open while the checks run; its path is in
 * IMGJOB_TEST_CHECKS_SOCKET. Connecting and waiting for the socket to close
 * is the wait: it ends at once when the checks are already done (nothing
 * listens any more), or when they end. Run outside `npm test` (no variable),
 * nothing waits.
 */
import { connect } from 'node:net';

/** Resolves when the checks of the `npm test` that started this run have ended. */
export function checksEnded(socketPath = process.env.IMGJOB_TEST_CHECKS_SOCKET): Promise<void> {
  if (socketPath === undefined || socketPath === '') return Promise.resolve();
  return new Promise((resolve) => {
    const socket = connect(socketPath);
    // Refused or gone (checks done), or closed by scripts/test.js (checks ending): either way, go on.
    socket.once('error', () => {
      resolve();
    });
    socket.once('close', () => {
      resolve();
    });
    socket.resume();
  });
}

// At the top level, not in a hook: vitest counts the wait as the file's
// setup, not in its tests' time, and a hook's timeout does not apply.
await checksEnded();
// The files share one worker and module graph: what the file before this
// one left behind is collected now, not while this one measures
// (vitest.config.ts gives the worker --expose-gc).
globalThis.gc?.();
