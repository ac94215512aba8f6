/**
 * The built CLI on real pseudo-terminals (Python's `pty`): a 0×0 terminal
 * (what `script`, `docker run -t` or `ssh -tt` from a script give) must not
 * hang it, a terminal that shrinks to 0 columns mid-run must not either, a
 * hang-up saves and exits 129, and colours follow NO_COLOR / FORCE_COLOR.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { CLI_PATH, runCli, spawnCli } from './helpers/cli.js';
import { caseBed } from './helpers/case-bed.js';

const bed = caseBed('terminal');

/**
 * Runs argv on a pseudo-terminal of `cols`×`rows`; relays everything it
 * writes, counting bytes (and killing it past 2 MB, the sign of a redraw
 * loop). When the output shows the resize marker, the terminal shrinks to
 * 0×0 (and `RESIZED` is printed); when it shows the hang-up marker, the
 * terminal is closed (the child gets SIGHUP). Prints one JSON line at the end.
 */
const PTY_RUNNER = String.raw`
import fcntl, json, os, pty, signal, struct, sys, termios
cols, rows, resize_on, hangup_on = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
argv = sys.argv[5:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    os.execvp(argv[0], argv)
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(25)
seen, total, resized, hung_up, killed = b'', 0, False, False, False
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
    if hangup_on and not hung_up and hangup_on in text:
        os.close(fd)
        hung_up = True
        break
_, status = os.waitpid(pid, 0)
print(json.dumps({'code': os.waitstatus_to_exitcode(status), 'bytes': total, 'killed': killed,
                  'output': seen.decode('utf8', 'replace')[-20000:]}), flush=True)
`;

type PtyResult = { code: number; bytes: number; killed: boolean; output: string };
type PtyRun = {
  readonly result: Promise<PtyResult>;
  /** Resolves when the runner printed this line. */
  line(text: string): Promise<void>;
};

const ESC = '\u001b';
const python = spawnSync('python3', ['-c', 'import pty, termios'], { stdio: 'ignore' });
const hasPty = python.status === 0;
if (!hasPty && !process.env.CI)
  console.warn('skipping the pseudo-terminal tests: python3 with pty is not available');
const ptyIt = hasPty || process.env.CI ? it : it.skip;

function runOnPty(
  args: readonly string[],
  options: {
    cols: number;
    rows: number;
    env?: Record<string, string | undefined>;
    resizeOn?: string;
    hangupOn?: string;
  },
): PtyRun {
  const env: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  // The terminal decides here: neither the test runner's CI nor its NO_COLOR.
  delete env.CI;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  Object.assign(env, options.env);
  const child = spawn(
    'python3',
    [
      '-c',
      PTY_RUNNER,
      String(options.cols),
      String(options.rows),
      options.resizeOn ?? '',
      options.hangupOn ?? '',
      process.execPath,
      CLI_PATH,
      ...args,
    ],
    { cwd: bed.dir, env, stdio: ['ignore', 'pipe', 'inherit'] },
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

const writeManifest = (stores: Record<string, string[]>): string => bed.writeManifest(stores);

const SIX_IMAGES = {
  S1: ['/img/image.png', '/img/image.gif'],
  S2: ['/img/baseline.jpg', '/img/image.webp'],
  S3: ['/img/image.bmp', '/img/progressive.jpg'],
};

describe('progress on a pseudo-terminal', () => {
  ptyIt('completes a job under a 0×0 terminal, with no progress drawn', async () => {
    const manifest = writeManifest(SIX_IMAGES);
    const out = join(bed.dir, 'm.results.json');
    // 60 ms a GPU step: the job lasts long enough for a spinner to draw often.
    const run = runOnPty(['run', manifest, '--gpu-delay', '60', '--retries', '0'], {
      cols: 0,
      rows: 0,
    });
    const { code, bytes, killed, output } = await run.result;
    expect(killed).toBe(false);
    expect(code, output).toBe(0);
    // The table and summary only: kilobytes, not the megabytes of a clear loop.
    expect(bytes).toBeLessThan(5000);
    expect(output).not.toContain('img/s');
    expect((await loadResults(out)).counts.done).toBe(6);
  });

  ptyIt('stops drawing when the terminal shrinks to 0 columns mid-run, and completes', async () => {
    const gate = bed.server.gate('shrink');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/shrink/image.gif'] });
    const run = runOnPty(['run', manifest, '--gpu-delay', '0', '--retries', '0'], {
      cols: 80,
      rows: 24,
      resizeOn: 'img/s',
    });
    await run.line('RESIZED');
    gate.open();
    const { code, bytes, killed, output } = await run.result;
    expect(killed).toBe(false);
    expect(code, output).toBe(0);
    expect(bytes).toBeLessThan(20_000);
  });

  ptyIt('shows progress on a real terminal, and not with --no-progress', async () => {
    const gate = bed.server.gate('shown');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/shown/image.gif'] });
    const shown = runOnPty(['run', manifest, '--gpu-delay', '0', '-o', join(bed.dir, 'a.json')], {
      cols: 80,
      rows: 24,
      hangupOn: 'img/s',
    });
    const first = await shown.result;
    expect(first.output).toMatch(/stores 0\/1 \(1 running\) · images 1\/2 · [\d.]+ img\/s/);
    gate.open();
    const quiet = runOnPty(
      ['run', manifest, '--gpu-delay', '0', '--no-progress', '-o', join(bed.dir, 'b.json')],
      { cols: 80, rows: 24 },
    );
    const second = await quiet.result;
    expect(second.code, second.output).toBe(0);
    expect(second.output).not.toContain('img/s');
    expect(second.output).not.toContain('reading manifests');
    const underCi = await runOnPty(
      ['run', manifest, '--gpu-delay', '0', '-o', join(bed.dir, 'c.json')],
      {
        cols: 80,
        rows: 24,
        env: { CI: 'true' },
      },
    ).result;
    expect(underCi.code, underCi.output).toBe(0);
    expect(underCi.output).not.toContain('img/s');
  });
});

describe('a hang-up (SIGHUP)', () => {
  ptyIt('saves the results and exits 129 when the terminal goes away', async () => {
    bed.server.gate('hup'); // never opened: the job is mid-run when the terminal closes
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/hup/image.gif'] });
    const out = join(bed.dir, 'm.results.json');
    const run = runOnPty(['run', manifest, '--gpu-delay', '0'], {
      cols: 80,
      rows: 24,
      hangupOn: 'img/s',
    });
    const { code, output } = await run.result;
    // Not -6: Node aborts on exit when it cannot restore a hung-up terminal.
    expect(code, output).toBe(129);
    const document = await loadResults(out);
    expect(document).toMatchObject({ status: 'ongoing', interrupted: true });
    expect(document.counts.done).toBe(1);
    expect(document.writer).toBeUndefined();
  });

  it('saves and exits 129 on SIGHUP without a terminal too, and resumes', async () => {
    const gate = bed.server.gate('hup-pipe');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/hup-pipe/image.gif'] });
    const out = join(bed.dir, 'm.results.json');
    const run = spawnCli(['run', manifest, '--gpu-delay', '0'], { cwd: bed.dir });
    await gate.reached;
    const { code, stderr } = await run.kill('SIGHUP');
    expect(code).toBe(129);
    expect(stderr).toContain('imgjob: SIGHUP: stopping, saving results');
    expect(stderr).toMatch(/Resume with: imgjob run .* --resume/);
    expect(await loadResults(out)).toMatchObject({ status: 'ongoing', interrupted: true });
    gate.open();
    const resumed = await runCli(['run', manifest, '--gpu-delay', '0', '--resume'], {
      cwd: bed.dir,
    });
    expect(resumed.code).toBe(0);
  });
});

describe('colours', () => {
  ptyIt('the spinner is cyan on a terminal, and plain with NO_COLOR', async () => {
    bed.server.gate('color');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/color/image.gif'] });
    const coloured = await runOnPty(['run', manifest, '--gpu-delay', '0', '-o', 'a.json'], {
      cols: 80,
      rows: 24,
      hangupOn: 'img/s',
    }).result;
    expect(coloured.output).toContain('\u001b[36m');
    const plain = await runOnPty(['run', manifest, '--gpu-delay', '0', '-o', 'b.json'], {
      cols: 80,
      rows: 24,
      env: { NO_COLOR: '1' },
      hangupOn: 'img/s',
    }).result;
    expect(plain.output).toContain('img/s');
    expect(plain.output).not.toMatch(new RegExp(`${ESC}\\[3\\dm`));
  });

  it('FORCE_COLOR colours piped output; without it, piped output is plain', async () => {
    const manifest = writeManifest({ S1: ['/img/image.png'], S2: ['/status/404'] });
    const forced = await runCli(['run', manifest, '--gpu-delay', '0', '--retries', '0'], {
      cwd: bed.dir,
      env: { FORCE_COLOR: '1', CI: '1' },
    });
    expect(forced.code).toBe(1);
    expect(forced.stdout).toContain('\u001b[31mfailed\u001b[39m');
    const plain = await runCli(['run', manifest, '--gpu-delay', '0', '--force', '--retries', '0'], {
      cwd: bed.dir,
      env: { CI: '1' },
    });
    expect(plain.stdout).toContain('failed');
    expect(plain.stdout).not.toContain('\u001b[');
  });
});
