/**
 * The built CLI on a real pseudo-terminal (Python's `pty`), for what only a
 * terminal shows: progress, colours, a full-screen `status --watch`.
 *
 * ```ts
 * const run = runOnPty(dir, ['status', out, '--watch'], { cols: 40, rows: 24, seenOn: '…' });
 * await run.line('SEEN'); // the child printed the marker
 * const { code, output } = await run.result;
 * ```
 */
import { spawn, spawnSync } from 'node:child_process';

import { it } from 'vitest';

import { CLI_PATH } from './cli.js';

/**
 * Runs argv on a pseudo-terminal of `cols`×`rows`; relays everything it
 * writes, counting bytes (and killing it past 2 MB, the sign of a redraw
 * loop). When the output shows the resize marker, the terminal shrinks to
 * 0×0 (and `RESIZED` is printed); when it shows the seen marker, `SEEN` is
 * printed; when it shows the Ctrl-C marker, Ctrl-C is typed (the child
 * gets SIGINT); when it shows the hang-up marker, the terminal is closed
 * (the child gets SIGHUP). Prints one JSON line at the end.
 */
const PTY_RUNNER = String.raw`
import fcntl, json, os, pty, signal, struct, sys, termios
cols, rows, resize_on, seen_on, ctrl_c_on, hangup_on = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:7]
argv = sys.argv[7:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    os.execvp(argv[0], argv)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(25)
seen, total, resized, noticed, typed, hung_up, killed = b'', 0, False, False, False, False, False
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    total += len(data)
    seen = (seen + data)[-200000:]
    text = seen.decode('utf8', 'replace')
    if total > 2000000:
        os.kill(pid, signal.SIGKILL)
        killed = True
        break
    if resize_on and not resized and resize_on in text:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 0, 0, 0, 0))
        resized = True
        print('RESIZED', flush=True)
    if seen_on and not noticed and seen_on in text:
        noticed = True
        print('SEEN', flush=True)
    if ctrl_c_on and not typed and ctrl_c_on in text:
        os.write(fd, b'\x03')
        typed = True
    if hangup_on and not hung_up and hangup_on in text:
        os.close(fd)
        hung_up = True
        break
_, status = os.waitpid(pid, 0)
print(json.dumps({'code': os.waitstatus_to_exitcode(status), 'bytes': total, 'killed': killed,
                  'output': seen.decode('utf8', 'replace')[-20000:]}), flush=True)
`;

export type PtyResult = { code: number; bytes: number; killed: boolean; output: string };
export type PtyRun = {
  readonly result: Promise<PtyResult>;
  /** Resolves when the runner printed this line (`RESIZED`, `SEEN`). */
  line(text: string): Promise<void>;
};
export type PtyOptions = {
  readonly cols: number;
  readonly rows: number;
  readonly env?: Record<string, string | undefined>;
  readonly resizeOn?: string;
  readonly seenOn?: string;
  readonly ctrlCOn?: string;
  readonly hangupOn?: string;
};

export const ESC = '\u001b';
/**
 * python3's own executable, looked up once: the `python3` on PATH may be a
 * version manager's shim (pyenv's is a shell script that costs ~0.4 s of CPU
 * a start, more than the python it starts).
 */
const python = spawnSync('python3', ['-c', 'import pty, sys, termios; print(sys.executable)'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'ignore'],
});
const hasPty = python.status === 0;
const PYTHON = (hasPty && python.stdout.trim()) || 'python3';
if (!hasPty && !process.env.CI)
  console.warn('skipping the pseudo-terminal tests: python3 with pty is not available');
/** `it`, skipped without python3's pty (and failing under CI=true instead). */
export const ptyIt = hasPty || process.env.CI ? it : it.skip;

export function runOnPty(cwd: string, args: readonly string[], options: PtyOptions): PtyRun {
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  // The terminal decides here: neither the test runner's CI nor its NO_COLOR.
  delete env.CI;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  Object.assign(env, options.env);
  const child = spawn(
    PYTHON,
    [
      // No site packages: the runner needs the standard library only (half of python's start).
      '-S',
      '-c',
      PTY_RUNNER,
      String(options.cols),
      String(options.rows),
      options.resizeOn ?? '',
      options.seenOn ?? '',
      options.ctrlCOn ?? '',
      options.hangupOn ?? '',
      process.execPath,
      CLI_PATH,
      ...args,
    ],
    { cwd, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let stdout = '';
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const check of waiters) check();
  });
  const result = new Promise<PtyResult>((resolve, reject) => {
    child.on('close', () => {
      const last = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as PtyResult);
      } catch {
        reject(new Error(`pty runner said: ${stdout}`));
      }
    });
  });
  return {
    result,
    line: (text) =>
      new Promise((resolve) => {
        const check = (): void => {
          if (stdout.includes(`${text}\n`)) resolve();
        };
        waiters.push(check);
        check();
      }),
  };
}
