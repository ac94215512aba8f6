// @ts-check
/**
 * Runs a command and measures it from outside: wall time from spawn to exit,
 * and the peak resident set size of the process. GNU time (`/usr/bin/time
 * -f %M`) gives the exact peak when it is installed; otherwise the peak is
 * polled from `/proc/<pid>/status` (VmHWM, itself a high-water mark, read
 * every 20 ms), which can miss a spike in the last few milliseconds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

/**
 * @typedef {object} Measured
 * @property {number} code Exit code (128 + n when killed by signal n).
 * @property {number} wallMs
 * @property {number | undefined} peakRssMb
 * @property {number | undefined} cpuMs User + system CPU time (GNU time only).
 * @property {number | undefined} writtenBytes Bytes the process wrote to file systems (GNU time only).
 * @property {'gnu-time' | 'proc-poll'} rssBy
 * @property {string} stdout
 * @property {string} stderr
 */

/** @type {boolean | undefined} */
let gnuTimeWorks;

/**
 * @param {readonly string[]} argv Command and arguments.
 * @param {{ cwd: string, scratch: string, env?: NodeJS.ProcessEnv }} options `scratch`: a folder
 *   for GNU time's output; `env` adds to the environment.
 * @returns {Promise<Measured>}
 */
export async function runMeasured(argv, { cwd, scratch, env = {} }) {
  gnuTimeWorks ??= spawnSync(GNU_TIME, ['-f', '%M', 'true'], { stdio: 'ignore' }).status === 0;
  const timeFile = join(scratch, `time-${process.pid}-${Date.now()}.txt`);
  const [command = '', ...args] = gnuTimeWorks
    ? [GNU_TIME, '-f', '%M %U %S %O', '-o', timeFile, ...argv]
    : argv;
  const started = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (/** @type {string} */ text) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (/** @type {string} */ text) => (stderr += text));
  let polledKb = 0;
  const poll = gnuTimeWorks
    ? undefined
    : setInterval(() => {
        polledKb = Math.max(polledKb, readHwmKb(child.pid));
      }, 20);
  /** @type {number} */
  const code = await new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (exitCode, signal) => {
      done(exitCode ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
  const wallMs = performance.now() - started;
  if (poll) clearInterval(poll);
  let peakRssMb = polledKb > 0 ? polledKb / 1024 : undefined;
  /** @type {number | undefined} */
  let cpuMs;
  /** @type {number | undefined} */
  let writtenBytes;
  if (gnuTimeWorks) {
    // With -o, GNU time writes "Command exited with non-zero status n" above the figures.
    const text = await readFile(timeFile, 'utf8').catch(() => '');
    const [kb = NaN, user = NaN, system = NaN, blocks = NaN] = (text.trim().split('\n').pop() ?? '')
      .split(' ')
      .map(Number);
    peakRssMb = kb > 0 ? kb / 1024 : undefined;
    cpuMs = Number.isFinite(user + system) ? Math.round((user + system) * 1000) : undefined;
    // %O counts 512-byte blocks the kernel wrote for it (the results file, its journal).
    writtenBytes = Number.isFinite(blocks) ? blocks * 512 : undefined;
    await rm(timeFile, { force: true });
  }
  return {
    code,
    wallMs,
    peakRssMb,
    cpuMs,
    writtenBytes,
    rssBy: gnuTimeWorks ? 'gnu-time' : 'proc-poll',
    stdout,
    stderr,
  };
}

/**
 * @param {number | undefined} pid
 * @returns {number} VmHWM in kB, 0 when unreadable (gone, or not Linux).
 */
function readHwmKb(pid) {
  if (pid === undefined) return 0;
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}
