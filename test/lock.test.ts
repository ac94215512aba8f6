/**
 * One run per results file (issue 13 §3): `<results>.lock` is taken before
 * any download. Two runs started at the same instant on one file: exactly
 * one proceeds, the other is refused with exit 2 and asks for nothing. (A
 * lock left behind, something else at its name, and its end:
 * lock-left.test.ts.)
 *
 * @module-tag e2e
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

import { describe, expect, it } from 'vitest';

import { lockPathOf } from '../src/results/paths.js';
import { loadResults } from '../src/results/reader.js';
import { spawnCli } from './helpers/cli.js';
import { ARGS, LOCKED, useLockBed } from './helpers/lock-bed.js';
import { runJobHere, runMain } from './helpers/main.js';

const bed = useLockBed();

/** Races rounds `from` ≤ round < `to`, one after another. */
async function raceRounds(from: number, to: number): Promise<void> {
  for (let round = from; round < to; round++) {
    const key = `race-${round}`;
    const { manifest, out } = bed.gatedJob(key);
    const runs = [0, 1].map(() => spawnCli(['run', manifest, '-o', out, '--force', ...ARGS]));
    const first = await Promise.race(runs.map((run) => run.exited));
    expect(first.code, `round ${round}: ${first.stderr}`).toBe(2);
    expect(first.stderr).toMatch(LOCKED);
    expect(first.stdout).toBe('');
    const winner = runs.find((run) => !run.done);
    expect(winner, `round ${round}: both ended`).toBeDefined();
    if (!winner) return;
    // The winner holds the lock and is the only one that asked for the image.
    await bed.server.until((requests) => requests.some((r) => r.path.startsWith(`/gate/${key}/`)));
    expect(JSON.parse(readFileSync(lockPathOf(out), 'utf8'))).toMatchObject({
      pid: winner.pid,
      host: hostname(),
    });
    if (round === 0) {
      // `status` reads a locked file as usual.
      const status = await runMain(['status', out]);
      expect(status.code, status.stderr).toBe(3);
      expect(status.stdout).toContain(`running (pid ${winner.pid})`);
    }
    bed.server.gate(key).open();
    const won = await winner.exited;
    expect(won.code, won.stderr).toBe(0);
    expect(bed.server.requestsTo(`/gate/${key}/`)).toHaveLength(1);
    expect((await loadResults(out)).status).toBe('completed');
    expect(existsSync(lockPathOf(out))).toBe(false);
  }
}

describe('two runs on one results file', () => {
  it('started at the same instant, 10 times: exactly one proceeds, the other is refused with exit 2 before any download', async () => {
    // Two lanes of 5 rounds side by side: each round is a race of its own
    // (its own file and gate), and the file takes half the time.
    await Promise.all([0, 5].map((first) => raceRounds(first, first + 5)));
  });

  it('a run held up refuses a --resume of the same file too, leaving file and lock alone', async () => {
    const { manifest, out } = bed.gatedJob('held');
    const run = spawnCli(['run', manifest, '-o', out, ...ARGS]);
    await bed.server.until((requests) => requests.some((r) => r.path.startsWith('/gate/held/')));
    const lock = readFileSync(lockPathOf(out), 'utf8');
    const second = await runJobHere(['run', manifest, '-o', out, '--resume', ...ARGS]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(LOCKED);
    expect(second.stderr).toContain(`pid ${run.pid}`);
    expect(readFileSync(lockPathOf(out), 'utf8')).toBe(lock);
    bed.server.gate('held').open();
    expect((await run.exited).code).toBe(0);
    expect(existsSync(lockPathOf(out))).toBe(false);
  });
});
