/**
 * A bug is not a failed job: the CLI entry turns any error that is not the
 * user's into exit 70 with one line asking for a report, and shows the stack
 * only when asked.
 */
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { runMain } from './helpers/main.js';

// A stdout whose write throws something other than EPIPE is a fault no user
// input can cause, so it must take the bug path, not the bad-input path.
function brokenStdout(): PassThrough {
  const stream = new PassThrough();
  stream.write = () => {
    throw new TypeError('injected fault: stdout.write is broken');
  };
  return stream;
}

describe('internal errors', () => {
  it('exit 70 with one report line and no stack trace', async () => {
    const { code, stderr } = await runMain(['--help'], { stdout: brokenStdout() });
    expect(code).toBe(70);
    expect(stderr).toContain('imgjob: internal error: injected fault');
    expect(stderr).toContain('please report it');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('shows the stack with --debug', async () => {
    const { code, stderr } = await runMain(['--debug', '--help'], { stdout: brokenStdout() });
    expect(code).toBe(70);
    expect(stderr).toMatch(/\n\s+at /);
  });
});
