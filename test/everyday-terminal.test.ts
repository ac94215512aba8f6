/**
 * The built CLI on real pseudo-terminals (Python's `pty`): a 0×0 terminal
 * (what `script`, `docker run -t` or `ssh -tt` from a script give) must not
 * hang it, a terminal that shrinks to 0 columns mid-run must not either, a
 * hang-up saves and exits 129, and colours follow NO_COLOR / FORCE_COLOR.
 * What the environment or a flag decides once the terminal has shown its
 * part runs main() in this process.
 *
 * @module-tag e2e
 */
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { progressWanted } from '../src/cli/progress.js';
import { loadResults } from '../src/results/reader.js';
import { spawnCli } from './helpers/cli.js';
import { caseBed } from './helpers/case-bed.js';
import { fakeTerminal, runJobOnTerminal } from './helpers/everyday-main.js';
import type { Gate } from './helpers/fault-server.js';
import { runJobHere, withEnv } from './helpers/main.js';
import {
  ESC,
  ptyIt,
  runOnPty as runOnPtyIn,
  type PtyOptions,
  type PtyResult,
  type PtyRun,
} from './helpers/pty.js';

const bed = caseBed('terminal');

const runOnPty = (args: readonly string[], options: PtyOptions): PtyRun =>
  runOnPtyIn(bed.dir, args, options);

const writeManifest = (stores: Record<string, string[]>): string => bed.writeManifest(stores);

type HungUpRun = PtyResult & {
  readonly manifest: string;
  /** Its results file. */
  readonly out: string;
  /** Where its second image waits: never opened while it ran. */
  readonly gate: Gate;
};

let hungUp: Promise<HungUpRun> | undefined;

/**
 * A two-image job on an 80×24 terminal with colours, its second image held
 * at a gate, and the terminal closed once progress shows the first image
 * recorded. Three cases read this one run: the progress it drew, the
 * spinner's colour, and what the hang-up saved. The first case to ask runs
 * it, in its folder.
 */
function runHungUpOnTerminal(): Promise<HungUpRun> {
  hungUp ??= (async () => {
    const gate = bed.server.gate('hung-up');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/hung-up/image.gif'] });
    const out = join(bed.dir, 'a.json');
    const run = runOnPty(['run', manifest, '--gpu-delay', '0', '-o', out], {
      cols: 80,
      rows: 24,
      // The first frame may be drawn before image 1 is recorded: wait for the one asserted.
      hangupOn: 'images 1/2',
    });
    return { ...(await run.result), manifest, out, gate };
  })();
  return hungUp;
}

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
    const first = await runHungUpOnTerminal();
    const { gate, manifest } = first;
    expect(first.output).toMatch(/stores 0\/1 \(1 running\) · images 1\/2 · [\d.]+ img\/s/);
    gate.open();
    // The real terminal has shown progress. Now the flag and CI, in this
    // process, on a stream that says what that terminal said of itself (one
    // progress would be drawn on), with none of the runner's CI or colour.
    const terminal = { columns: 80, rows: 24 };
    expect(progressWanted(fakeTerminal(terminal), { disabled: false, env: {} })).toBe(true);
    const noEnv = { CI: undefined, NO_COLOR: undefined, FORCE_COLOR: undefined };
    const second = await withEnv(noEnv, () =>
      runJobOnTerminal(
        ['run', manifest, '--gpu-delay', '0', '--no-progress', '-o', join(bed.dir, 'b.json')],
        terminal,
      ),
    );
    expect(second.code, second.output).toBe(0);
    expect(second.output).not.toContain('img/s');
    expect(second.output).not.toContain('reading manifests');
    const underCi = await withEnv({ ...noEnv, CI: 'true' }, () =>
      runJobOnTerminal(
        ['run', manifest, '--gpu-delay', '0', '-o', join(bed.dir, 'c.json')],
        terminal,
      ),
    );
    expect(underCi.code, underCi.output).toBe(0);
    expect(underCi.output).not.toContain('img/s');
    expect(underCi.output).not.toContain('reading manifests');
  });
});

describe('a hang-up (SIGHUP)', () => {
  ptyIt('saves the results and exits 129 when the terminal goes away', async () => {
    // Its gate was never opened while it ran: the job was mid-run when the terminal closed.
    const { code, output, out } = await runHungUpOnTerminal();
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
    const resumed = await runJobHere(['run', manifest, '--gpu-delay', '0', '--resume']);
    expect(resumed.code).toBe(0);
  });
});

describe('colours', () => {
  ptyIt('the spinner is cyan on a terminal, and plain with NO_COLOR', async () => {
    const coloured = await runHungUpOnTerminal();
    expect(coloured.output).toContain('\u001b[36m');
    bed.server.gate('color');
    const manifest = writeManifest({ S1: ['/img/image.png', '/gate/color/image.gif'] });
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
    // In this process: its output is captured as a pipe's would be, and the
    // variables decide. FORCE_COLOR wins over NO_COLOR; with neither, the
    // pipe alone keeps the output plain.
    const forced = await withEnv({ FORCE_COLOR: '1', NO_COLOR: '1' }, () =>
      runJobHere(['run', manifest, '--gpu-delay', '0', '--retries', '0']),
    );
    expect(forced.code).toBe(1);
    expect(forced.stdout).toContain('\u001b[31mfailed\u001b[39m');
    const plain = await withEnv({ FORCE_COLOR: undefined, NO_COLOR: undefined }, () =>
      runJobHere(['run', manifest, '--gpu-delay', '0', '--force', '--retries', '0']),
    );
    expect(plain.stdout).toContain('failed');
    expect(plain.stdout).not.toContain('\u001b[');
  });
});
