/**
 * A bug is not a failed job: the CLI entry turns any error that is not the
 * user's into exit 70 with one line asking for a report, and shows the stack
 * only when asked.
 */
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import type { CliIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';

function capture(): { io: CliIo; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (chunk: Buffer) => (text += chunk.toString()));
  stdout.resume();
  const io = {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stderr: stderr as unknown as NodeJS.WriteStream,
    stdin: new PassThrough() as unknown as NodeJS.ReadStream,
  };
  return { io, err: () => text };
}

// A stdout whose write throws something other than EPIPE is a fault no user
// input can cause, so it must take the bug path, not the bad-input path.
function brokenStdout(): NodeJS.WriteStream {
  const stream = new PassThrough();
  stream.write = () => {
    throw new TypeError('injected fault: stdout.write is broken');
  };
  return stream as unknown as NodeJS.WriteStream;
}

describe('internal errors', () => {
  it('exit 70 with one report line and no stack trace', async () => {
    const { io, err } = capture();
    const code = await main(['node', 'imgjob', '--help'], { ...io, stdout: brokenStdout() });
    expect(code).toBe(70);
    expect(err()).toContain('imgjob: internal error: injected fault');
    expect(err()).toContain('please report it');
    expect(err()).not.toMatch(/\n\s+at /);
  });

  it('shows the stack with --debug', async () => {
    const { io, err } = capture();
    const code = await main(['node', 'imgjob', '--debug', '--help'], {
      ...io,
      stdout: brokenStdout(),
    });
    expect(code).toBe(70);
    expect(err()).toMatch(/\n\s+at /);
  });
});
