/**
 * The lock of a results file (issue 13 §3), once its run is gone or was
 * never there: a lock left behind by a dead run (a zombie too) is taken
 * over and a live one respected; something at the lock's name that is not
 * a lock file is refused; the lock goes when the run ends, stopped or not.
 * (Two runs racing for one file: lock.test.ts.)
 *
 * @module-tag e2e
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';

import { describe, expect, it } from 'vitest';

import { lockPathOf } from '../src/results/paths.js';
import { loadResults } from '../src/results/reader.js';
import { processState } from '../src/utils/process-alive.js';
import { CLI_PATH, spawnCli, type CliResult } from './helpers/cli.js';
import { ARGS, LOCKED, useLockBed } from './helpers/lock-bed.js';
import { runJobHere, runMain } from './helpers/main.js';
import { until } from './helpers/until.js';

const bed = useLockBed();

function mkfifo(path: string): void {
  const made = spawnSync('mkfifo', [path]);
  if (made.status !== 0) throw new Error(`mkfifo ${path}: ${made.stderr.toString()}`);
}

/** A pid that belonged to a process of this host and is free now. */
function deadPid(): number {
  return spawnSync('true').pid;
}

describe('a lock left behind', () => {
  it('by a run that is gone (dead pid, this host) is taken over', async () => {
    const { manifest, out } = bed.gatedJob('stale');
    bed.server.gate('stale').open();
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
    const { manifest, out } = bed.gatedJob(key);
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
      await bed.server.gate(key).reached;
      const { pid } = JSON.parse(readFileSync(lockPathOf(out), 'utf8')) as { pid: number };
      process.kill(pid, 'SIGKILL');
      await until(() => processState(pid) === 'Z', `pid ${String(pid)} to be a zombie`);
      bed.server.gate(key).open();

      const status = await runMain(['status', out]);
      expect(status.stdout).toMatch(/not running \(killed\?\)/);
      const resumed = await runJobHere(['run', manifest, '-o', out, '--resume', ...ARGS]);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(existsSync(lockPathOf(out))).toBe(false);
      expect((await loadResults(out)).status).toBe('completed');
      expect(processState(pid)).toBe('Z');
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('by a live process is respected; one of another host cannot be checked and is respected too', async () => {
    const { manifest, out } = bed.gatedJob('live');
    bed.server.gate('live').open();
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
    expect(bed.server.requestsTo('/gate/live/')).toEqual([]);
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
      const { manifest, out } = bed.gatedJob(key);
      const lock = lockPathOf(out);
      plant(lock);
      const result = await runJobHere(['run', manifest, '-o', out, ...ARGS]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `imgjob: cannot lock ${out}: ${lock} is ${what.replace('LOCK', lock)}, not an imgjob lock file; remove it, or choose another file with -o\n`,
      );
      expect(bed.server.requestsTo(`/gate/${key}/`)).toEqual([]);
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
    const { manifest, out } = bed.gatedJob(key);
    const run = spawnCli(['run', manifest, '-o', out, ...ARGS]);
    await bed.server.until((requests) => requests.some((r) => r.path.startsWith(`/gate/${key}/`)));
    expect(existsSync(lockPathOf(out))).toBe(true);
    const stopped: CliResult = await run.kill(signal);
    expect(stopped.code, stopped.stderr).toBe(code);
    expect(existsSync(lockPathOf(out))).toBe(false);
    bed.server.gate(key).open();
  });
});
