/**
 * One run per results file (issue 13 §3): `<results>.lock` is taken before
 * any download. Two runs started at the same instant on one file: exactly
 * one proceeds, the other is refused with exit 2 and asks for nothing.
 *
 * @module-tag e2e
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lockPathOf } from '../src/results/paths.js';
import { loadResults } from '../src/results/reader.js';
import { CLI_PATH, spawnCli, stopAll, type CliResult } from './helpers/cli.js';
import { runJobHere, runMain } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { until } from './helpers/until.js';

const ARGS = ['--gpu-delay', '0', '--retries', '0'];
const LOCKED =
  /^imgjob: .+ is being written by a running imgjob \(pid \d+( on .+)?\); wait for it to end or stop it, or choose another file with -o \(lock: .+\.lock\)\n$/;

let server: FaultServer;
let dir: string;
beforeAll(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'imgjob-lock-'));
});
afterAll(async () => {
  await stopAll();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A one-image job behind gate `key`; returns its manifest and results path. */
function gatedJob(key: string): { manifest: string; out: string } {
  const manifest = join(dir, `${key}.json`);
  const visits = [{ store_id: 'S1', image_url: [server.url(`/gate/${key}/image.png`)] }];
  writeFileSync(manifest, JSON.stringify({ count: 1, visits }));
  return { manifest, out: join(dir, `${key}.results.json`) };
}

function mkfifo(path: string): void {
  const made = spawnSync('mkfifo', [path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr.toString()}`);
}

/** A pid that belonged to a process of this host and is free now. */
function deadPid(): number {
  return spawnSync('true').pid;
}

/** The state letter /proc gives `pid` (`Z`: a zombie), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'latin1');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return undefined;
  }
}

/** Races rounds `from` ≤ round < `to`, one after another. */
async function raceRounds(from: number, to: number): Promise<void> {
  for (let round = from; round < to; round++) {
    const key = `race-${round}`;
    const { manifest, out } = gatedJob(key);
    const runs = [0, 1].map(() => spawnCli(['run', manifest, '-o', out, '--force', ...ARGS]));
    const first = await Promise.race(runs.map((run) => run.exited));
    expect(first.code, `round ${round}: ${first.stderr}`).toBe(2);
    expect(first.stderr).toMatch(LOCKED);
    expect(first.stdout).toBe('');
    const winner = runs.find((run) => !run.done);
    expect(winner, `round ${round}: both ended`).toBeDefined();
    if (!winner) return;
    // The winner holds the lock and is the only one that asked for the image.
    await server.until((requests) => requests.some((r) => r.path.startsWith(`/gate/${key}/`)));
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
    server.gate(key).open();
    const won = await winner.exited;
    expect(won.code, won.stderr).toBe(0);
    expect(server.requestsTo(`/gate/${key}/`)).toHaveLength(1);
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
    const { manifest, out } = gatedJob('held');
    const run = spawnCli(['run', manifest, '-o', out, ...ARGS]);
    await server.until((requests) => requests.some((r) => r.path.startsWith('/gate/held/')));
    const lock = readFileSync(lockPathOf(out), 'utf8');
    const second = await runJobHere(['run', manifest, '-o', out, '--resume', ...ARGS]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(LOCKED);
    expect(second.stderr).toContain(`pid ${run.pid}`);
    expect(readFileSync(lockPathOf(out), 'utf8')).toBe(lock);
    server.gate('held').open();
    expect((await run.exited).code).toBe(0);
    expect(existsSync(lockPathOf(out))).toBe(false);
  });
});

describe('a lock left behind', () => {
  it('by a run that is gone (dead pid, this host) is taken over', async () => {
    const { manifest, out } = gatedJob('stale');
    server.gate('stale').open();
    writeFileSync(
      lockPathOf(out),
      JSON.stringify({ pid: deadPid(), host: hostname(), token: 'old' }),
    );
    const result = await runJobHere(['run', manifest, '-o', out, ...ARGS]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(lockPathOf(out))).toBe(false);
  });

  it('by a run killed but not yet reaped (a zombie: kill(pid, 0) still answers) is taken over', async () => {
    const key = 'zombie';
    const { manifest, out } = gatedJob(key);
    // The run's parent never waits for it (sh execs sleep), so once killed
    // it stays a zombie, as under an init or supervisor that reaps late.
    const parent = spawn(
      'sh',
      [
        '-c',
        '"$0" "$@" & exec sleep 600',
        process.execPath,
        CLI_PATH,
        'run',
        manifest,
        '-o',
        out,
        ...ARGS,
      ],
      { stdio: 'ignore' },
    );
    try {
      await server.gate(key).reached;
      const { pid } = JSON.parse(readFileSync(lockPathOf(out), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGKILL');
      await until(() => procState(pid) === 'Z', `pid ${String(pid)} to be a zombie`);
      server.gate(key).open();

      const status = await runMain(['status', out]);
      expect(status.stdout).toMatch(/not running \(killed\?\)/);
      const resumed = await runJobHere(['run', manifest, '-o', out, '--resume', ...ARGS]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(existsSync(lockPathOf(out))).toBe(false);
      expect((await loadResults(out)).status).toBe('completed');
      expect(procState(pid)).toBe('Z');
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('by a live process is respected; one of another host cannot be checked and is respected too', async () => {
    const { manifest, out } = gatedJob('live');
    server.gate('live').open();
    // The run is in this process, so the live holder is another one: its
    // parent (a lock with the run's own pid is one an earlier process left).
    for (const holder of [
      { pid: process.ppid, host: hostname(), token: 'live' },
      { pid: deadPid(), host: 'elsewhere.example', token: 'far' },
    ]) {
      const text = JSON.stringify(holder);
      writeFileSync(lockPathOf(out), text);
      const result = await runJobHere(['run', manifest, '-o', out, ...ARGS]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(LOCKED);
      expect(readFileSync(lockPathOf(out), 'utf8')).toBe(text);
    }
    expect(server.requestsTo('/gate/live/')).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });
});

describe('something at the name of the lock that is not a lock file', () => {
  const kinds: readonly [string, (lock: string) => void, string][] = [
    [
      'a FIFO',
      (lock) => {
        mkfifo(lock);
      },
      'a FIFO (named pipe)',
    ],
    [
      'a symbolic link to a FIFO',
      (lock) => {
        mkfifo(`${lock}.fifo`);
        symlinkSync(`${lock}.fifo`, lock);
      },
      `a symbolic link to "LOCK.fifo" (a FIFO (named pipe))`,
    ],
    [
      'a symbolic link to /dev/zero',
      (lock) => {
        symlinkSync('/dev/zero', lock);
      },
      'a symbolic link to "/dev/zero" (a character device)',
    ],
    [
      'a dangling symbolic link',
      (lock) => {
        symlinkSync('nowhere', lock);
      },
      'a symbolic link to "nowhere", which does not exist',
    ],
    [
      'a folder',
      (lock) => {
        mkdirSync(lock);
      },
      'a folder',
    ],
  ];

  it.each(kinds)(
    'is refused at once when it is %s: exit 2, one line naming it, nothing requested',
    async (name, plant, what) => {
      const key = `foreign-${kinds.findIndex(([kind]) => kind === name)}`;
      const { manifest, out } = gatedJob(key);
      const lock = lockPathOf(out);
      plant(lock);
      const result = await runJobHere(['run', manifest, '-o', out, ...ARGS]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `imgjob: cannot lock ${out}: ${lock} is ${what.replace('LOCK', lock)}, not an imgjob lock file; remove it, or choose another file with -o\n`,
      );
      expect(server.requestsTo(`/gate/${key}/`)).toEqual([]);
      expect(existsSync(out)).toBe(false);
      expect(lstatSync(lock).isFile()).toBe(false);
    },
  );
});

describe('the lock goes at the end', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('also when stopped by %s (exit %i)', async (signal, code) => {
    const key = `stop-${signal}`;
    const { manifest, out } = gatedJob(key);
    const run = spawnCli(['run', manifest, '-o', out, ...ARGS]);
    await server.until((requests) => requests.some((r) => r.path.startsWith(`/gate/${key}/`)));
    expect(existsSync(lockPathOf(out))).toBe(true);
    const stopped: CliResult = await run.kill(signal);
    expect(stopped.code, stopped.stderr).toBe(code);
    expect(existsSync(lockPathOf(out))).toBe(false);
    server.gate(key).open();
  });
});
