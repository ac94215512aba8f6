/**
 * main() in this process for the everyday files, where having a terminal
 * decides and the process itself is not the point: `runJobOnTerminal` writes
 * to a stream that says it is a terminal (`withEnv`, in ./main.js, sets the
 * variables of one run).
 *
 * ```ts
 * const { code, output } = await runJobOnTerminal(['run', manifest], { columns: 80, rows: 24 });
 * ```
 */
import { clearLine, cursorTo, moveCursor } from 'node:readline';
import { PassThrough } from 'node:stream';

import { runJobHere, type MainResult } from './main.js';

export type TerminalSize = { readonly columns: number; readonly rows: number };

/**
 * A stream that says what a terminal of `size` says of itself (`isTTY`, its
 * size, colours) and moves the cursor as one: what the CLI and its spinner
 * look at and call. Nothing written to it is interpreted.
 */
export function fakeTerminal(size: TerminalSize): NodeJS.WriteStream {
  const stream = new PassThrough();
  return Object.assign(stream, {
    isTTY: true,
    columns: size.columns,
    rows: size.rows,
    hasColors: () => true,
    getColorDepth: () => 8,
    // What a spinner moves the cursor with: the same escapes a terminal gets.
    cursorTo: (x: number, y?: number) => cursorTo(stream, x, y),
    moveCursor: (dx: number, dy: number) => moveCursor(stream, dx, dy),
    clearLine: (dir: -1 | 0 | 1) => clearLine(stream, dir),
  }) as unknown as NodeJS.WriteStream;
}

/**
 * `imgjob <args>` (`args` start with `run`) through main(), stdout and
 * stderr both on one fake terminal, as on a pseudo-terminal; its downloads
 * on the main thread (`--threads 1`, as `runJobHere`).
 */
export async function runJobOnTerminal(
  args: readonly string[],
  size: TerminalSize,
): Promise<{ code: MainResult['code']; output: string }> {
  const terminal = fakeTerminal(size);
  let output = '';
  terminal.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const { code } = await runJobHere(args, { stdout: terminal, stderr: terminal });
  return { code, output };
}
