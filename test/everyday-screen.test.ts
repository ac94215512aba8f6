/**
 * What a user sees in a terminal, through the built CLI: `status --watch`
 * as one screen redrawn in place (on real pseudo-terminals of 80×24 and
 * 40×24), a progress line that fits its terminal, what a resume and a
 * Ctrl-C leave on screen, and the small words (an empty job, a results file
 * given to `run`, `status --help`). Spawned where a terminal or a signal is
 * the point; the jobs a watch follows, the resume and the small words run
 * main() in this process.
 *
 * @module-tag e2e
 */
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

import { describe, expect, it } from 'vitest';

import { caseBed } from './helpers/case-bed.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import type { Gate } from './helpers/fault-server.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import { ESC, ptyIt, runOnPty } from './helpers/pty.js';

const bed = caseBed('screen');

const FAST = ['--gpu-delay', '0', '--retries', '0'];

/** 30 stores whose ids differ only at the end; the last one waits at `gate`. */
function thirtyStores(gate: string): Record<string, string[]> {
  const stores: Record<string, string[]> = {};
  for (let n = 1; n <= 30; n++)
    stores[`S10000000${String(n).padStart(2, '0')}`] = ['/img/image.png'];
  stores.S1000000030 = [`/gate/${gate}/image.gif`];
  return stores;
}

type RunningJob = {
  readonly gate: Gate;
  readonly out: string;
  /** The job's end. */
  readonly exited: Promise<MainResult>;
  /** Whether it has ended. */
  readonly done: () => boolean;
};

/**
 * A run of `thirtyStores`, once all but the last store are done. The job runs
 * in this process: the watch, the process under test, reads its results file
 * and sees its writer (this process) alive, as it would a job in another
 * terminal.
 */
async function thirtyStoresRunning(key: string): Promise<RunningJob> {
  const gate = bed.server.gate(key);
  const manifest = bed.writeManifest(thirtyStores(key));
  const out = join(bed.dir, 'm.results.json');
  let done = false;
  const exited = runJobHere(['run', manifest, ...FAST, '-o', out]).finally(() => (done = true));
  await gate.reached;
  await waitForResults(out, (doc) => doc.counts.done === 29 && doc.writer !== undefined);
  return { gate, out, exited, done: () => done };
}

/** The last frame drawn on the alternate screen, as lines of plain text. */
function lastFrame(output: string): string[] {
  const screen = output.slice(0, output.lastIndexOf(`${ESC}[?1049l`));
  const frame = screen.slice(screen.lastIndexOf(`${ESC}[H`) + 3);
  return stripVTControlCharacters(frame)
    .split(/\r?\n/)
    .filter((line) => line !== '');
}

describe('status --watch on a terminal', () => {
  for (const [cols, rows] of [
    [80, 24],
    [40, 24],
  ] as const) {
    ptyIt(
      `redraws one ${cols}×${rows} screen in place: summary first, the stores cut to fit, then the whole view`,
      async () => {
        const { gate, exited, out } = await thirtyStoresRunning('watch');
        const watch = runOnPty(bed.dir, ['status', out, '--watch', '--interval', '50'], {
          cols,
          rows,
          env: { NO_COLOR: '1' },
          seenOn: 'more stores',
        });
        await watch.line('SEEN');
        gate.open();
        expect((await exited).code).toBe(0);
        const { code, output, killed } = await watch.result;
        expect(killed).toBe(false);
        expect(code, output).toBe(0);
        // The alternate screen, entered once and left at the end.
        expect(output.split(`${ESC}[?1049h`)).toHaveLength(2);
        expect(output).toContain(`${ESC}[?1049l`);
        const frame = lastFrame(output);
        expect(frame.join(' ')).toMatch(/^job [\w-]+: ongoing — 30 images/);
        expect(frame.length).toBeLessThanOrEqual(rows);
        for (const line of frame) expect(Array.from(line).length, line).toBeLessThanOrEqual(cols);
        expect(frame.at(-1)).toMatch(/^… \d+ more stores$/);
        // Ids that differ at the end stay apart, however narrow the table.
        const ids = frame
          .filter((line) => line.startsWith('│ S'))
          .map((line) => line.split('│')[1]);
        expect(ids.length).toBeGreaterThan(5);
        expect(new Set(ids).size).toBe(ids.length);
        // After the screen: the finished job, in the scrollback.
        const after = stripVTControlCharacters(output.slice(output.lastIndexOf(`${ESC}[?1049l`)));
        expect(after).toMatch(/job [\w-]+: completed — 30 images/);
      },
    );
  }

  ptyIt(
    'goes back to the shell screen and exits 130 on Ctrl-C, leaving the job running',
    async () => {
      const { gate, exited, done, out } = await thirtyStoresRunning('watch-int');
      const watch = runOnPty(bed.dir, ['status', out, '--watch', '--interval', '50'], {
        cols: 80,
        rows: 24,
        ctrlCOn: 'more stores',
      });
      const { code, output } = await watch.result;
      expect(code, output).toBe(130);
      expect(output.indexOf(`${ESC}[?1049l`)).toBeGreaterThan(output.indexOf(`${ESC}[?1049h`));
      expect(output).toContain(`${ESC}[?25h`);
      expect(done()).toBe(false);
      gate.open();
      expect((await exited).code).toBe(0);
    },
  );
});

describe('the progress line', () => {
  ptyIt('fits a 40-column terminal by dropping the least useful fields', async () => {
    bed.server.gate('narrow'); // never opened: the job is mid-run when the terminal closes
    const manifest = bed.writeManifest({
      S1: ['/img/image.png', '/gate/narrow/image.gif'],
      S2: ['/status/404'],
    });
    const { output } = await runOnPty(bed.dir, ['run', manifest, ...FAST], {
      cols: 40,
      rows: 24,
      env: { NO_COLOR: '1' },
      hangupOn: 'images 2/3',
    }).result;
    // Each drawing starts with a spinner frame.
    const lines = stripVTControlCharacters(output)
      .split(/[\r\n⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/)
      .filter((line) => line.includes('images 2/3'));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line.length, line).toBeLessThan(39);
    // What matters most stays: the images and the failures.
    expect(lines.at(-1)).toMatch(/images 2\/3 · 1 failed/);
    expect(lines.at(-1)).not.toContain('/s');
  });
});

describe('after a Ctrl-C and a resume', () => {
  it('rows cut off say interrupted; the resume says what is done and runs no more stores than -c', async () => {
    const gate = bed.server.gate('resume');
    const image = ['/img/image.png', '/gate/resume/image.gif'];
    const manifest = bed.writeManifest({ S1: image, S2: image, S3: image });
    const out = join(bed.dir, 'm.results.json');
    const first = spawnCli(['run', manifest, ...FAST, '-c', '2'], { cwd: bed.dir });
    await waitForResults(
      out,
      (doc) =>
        doc.counts.done === 2 && doc.stores.filter((s) => s.status === 'ongoing').length === 2,
      { run: first },
    );
    expect((await first.kill('SIGINT')).code).toBe(130);

    const status = await runMain(['status', out]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(/in 3 stores \(2 interrupted, 1 pending\)/);
    expect(status.stdout.match(/│ S\d +│ 1\/2 +│ interrupted │/g)).toHaveLength(2);
    expect(status.stdout).not.toMatch(/│ ongoing /);

    // The resume in this process: what it prints and records is the point, not its process.
    const resumed = runJobHere(['run', manifest, ...FAST, '-c', '1', '--resume']);
    const running = await waitForResults(
      out,
      (doc) => doc.writer?.pid === process.pid && doc.stores.some((s) => s.status === 'ongoing'),
    );
    // -c 1: one store running; the other one cut off waits its turn.
    expect(running.stores.map((store) => store.status).sort()).toEqual([
      'ongoing',
      'pending',
      'pending',
    ]);
    gate.open();
    const { code, stdout, stderr } = await resumed;
    expect(code).toBe(0);
    expect(stderr).toContain('imgjob: resuming: 2 of 6 images already done');
    expect(stdout).toMatch(/in 3 stores \(3 completed\)/);
  });
});

describe('small words', () => {
  it('an empty job prints one line, not an empty table', async () => {
    const manifest = bed.writeManifest({});
    const out = join(bed.dir, 'm.results.json');
    const run = await runJobHere(['run', manifest, ...FAST]);
    expect(run.code).toBe(0);
    expect(run.stdout).not.toMatch(/[┌│└]/);
    const status = await runMain(['status', out]);
    expect(status.code).toBe(0);
    expect(status.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^job [\w-]+: completed — 0 images .* in 0 stores \(none\)$/),
    ]);
  });

  it('a results file given to run: the hint comes first', async () => {
    const manifest = bed.writeManifest({ S1: ['/img/image.png'] });
    const out = join(bed.dir, 'm.results.json');
    expect((await runJobHere(['run', manifest, ...FAST])).code).toBe(0);
    const { code, stderr } = await runMain(['run', out, ...FAST, '-o', join(bed.dir, 'x.json')]);
    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe(
      `imgjob: ${out}: this is an imgjob results file; did you mean \`imgjob status ${out}\`?`,
    );
  });

  it('status --help lists its exit codes', async () => {
    const { code, stdout } = await runMain(['status', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/Exit codes: 0 completed · 1 failed · 3 still ongoing.* · 2 /);
  });
});
