/**
 * Runs the BUILT command line (`bin/imgjob.js` → `dist/`) in a child process,
 * exactly as a user would, for end-to-end tests. Build first (`npm run build`;
 * `npm test` does it).
 *
 * ```ts
 * const run = spawnCli(['run', manifest, '-o', out, '--gpu-delay', '0']);
 * await waitForResults(out, (doc) => doc.counts.done >= 2, { run }); // or run.waitForOutput(/…/)
 * const { code, stderr } = await run.kill('SIGINT'); // sends it, resolves on exit
 *
 * const { code, stdout } = await runCli(['status', out, '--json']);
 * ```
 *
 * Every wait here is on a condition (output seen, file state reached, input
 * read, exit), never a fixed sleep; a wait fails at once, with the child's
 * output, when the child exits first, and after `timeoutMs` otherwise.
 * `stopAll()` SIGKILLs the children a failed test left running: use it in
 * `afterEach`, or in `afterAll` when tests of the file run concurrently (it
 * stops every child the file started).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { loadResults } from '../../src/results/reader.js';
import type { ResultsDocument } from '../../src/types.js';
import { waitForText, type GrowingOutput, type WaitOptions } from './text-wait.js';

/** The command line to test. */
export const CLI_PATH = fileURLToPath(new URL('../../bin/imgjob.js', import.meta.url));
const BUILT_ENTRY = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export type CliOptions = {
  /** Written to the child's standard input, which is then closed. @default nothing (closed at once) */
  readonly stdin?: string | Uint8Array;
  /**
   * Leave standard input open after writing `stdin`, so a child reading it
   * (`imgjob run -`) waits until the test calls `child.stdin.end()`.
   * @default false
   */
  readonly holdStdin?: boolean;
  /** Added to the environment (which already has `NO_COLOR=1`). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working folder of the child. @default process.cwd() */
  readonly cwd?: string;
};

export type CliResult = {
  /** Exit code; null when the child was ended by a signal it did not handle. */
  readonly code: number | null;
  /** The signal that ended the child, if it did not handle it (SIGKILL). */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
};

export type { WaitOptions } from './text-wait.js';

export type CliRun = GrowingOutput & {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves once the child exited and its output streams closed; never rejects. */
  readonly exited: Promise<CliResult>;
  /**
   * Resolves once everything written to standard input has left this
   * process. With more than a pipe holds (64 KiB) written, that proves the
   * child has been reading it — the one sign that a child waiting on its
   * input got that far (with `holdStdin`).
   */
  stdinTaken(options?: WaitOptions): Promise<void>;
  /** Sends `signal` and resolves when the child has exited. */
  kill(signal: NodeJS.Signals): Promise<CliResult>;
};

const live = new Set<CliRun>();

/** Starts `imgjob <args>`; the returned handle watches it. */
export function spawnCli(args: readonly string[], options: CliOptions = {}): CliRun {
  if (!existsSync(BUILT_ENTRY)) {
    throw new Error(`${BUILT_ENTRY} is missing: run \`npm run build\` before the end-to-end tests`);
  }
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd ?? process.cwd(),
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${CLI_PATH}`);
  const output = { stdout: '', stderr: '' };
  const watchers = new Set<() => void>();
  const changed = (): void => {
    for (const check of watchers) check();
  };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output.stdout += chunk;
    changed();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output.stderr += chunk;
    changed();
  });
  // A child that exits before reading its input must not fail the test with EPIPE.
  child.stdin.on('error', () => undefined);
  if (options.holdStdin) {
    if (options.stdin !== undefined) child.stdin.write(options.stdin);
  } else child.stdin.end(options.stdin);

  let done = false;
  const exited = new Promise<CliResult>((resolve) => {
    // 'close' (not 'exit'): the output streams are complete by then.
    child.on('close', (code, signal) => {
      done = true;
      live.delete(run);
      child.stdin.destroy();
      changed();
      resolve({ code, signal, stdout: output.stdout, stderr: output.stderr });
    });
  });

  const run: CliRun = {
    child,
    pid: child.pid,
    exited,
    get stdout() {
      return output.stdout;
    },
    get stderr() {
      return output.stderr;
    },
    get done() {
      return done;
    },
    waitForOutput(pattern, stream = 'stderr', waitOptions = {}) {
      return waitForText(
        {
          text: () => output[stream],
          done: () => done,
          watchers,
          describe: () => describe(run),
          what: `imgjob's ${stream}`,
        },
        pattern,
        waitOptions.timeoutMs,
      );
    },
    stdinTaken(waitOptions = {}) {
      return new Promise<void>((resolve, reject) => {
        const finish = (error?: Error): void => {
          clearTimeout(timer);
          watchers.delete(check);
          child.stdin.off('drain', check);
          if (error) reject(error);
          else resolve();
        };
        const check = (): void => {
          if (child.stdin.writableLength === 0) finish();
          else if (done)
            finish(new Error(`imgjob exited before reading its input\n${describe(run)}`));
        };
        const timer = setTimeout(() => {
          finish(new Error(`timed out waiting for imgjob to read its input\n${describe(run)}`));
        }, waitOptions.timeoutMs ?? 10_000);
        watchers.add(check);
        child.stdin.on('drain', check);
        check();
      });
    },
    async kill(signal) {
      if (!done) child.kill(signal);
      return exited;
    },
  };
  live.add(run);
  return run;
}

export type Served = { readonly run: CliRun; readonly url: string };

/**
 * Starts `imgjob serve` on a free port with the database `db` (private
 * addresses allowed: the test servers are on loopback) and `args` after,
 * and resolves with its URL once it says it listens.
 */
export async function spawnServe(db: string, args: readonly string[]): Promise<Served> {
  const run = spawnCli(['serve', '--port', '0', '--db', db, '--allow-private', ...args]);
  // Several servers starting at once on a loaded 2-core machine took 5–6 s
  // each to listen: the bound is a hang detector, as for workers.
  const output = await run.waitForOutput(/listening on http:\/\/\S+/, 'stderr', {
    timeoutMs: 30_000,
  });
  return { run, url: /listening on (http:\/\/\S+)/.exec(output)?.[1] ?? '' };
}

/** Runs `imgjob <args>` to its end. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, options).exited;
}

/**
 * Polls the results file at `path` (snapshot + journal, as `loadResults`
 * reads it) until `predicate` holds, and returns that document. A file that
 * does not exist yet is waited for; one that does not parse fails at once
 * (the file must be whole at every instant). With `run`, fails as soon as
 * that child exits without the condition having been met.
 */
export async function waitForResults(
  path: string,
  predicate: (document: ResultsDocument) => boolean,
  options: WaitOptions & { readonly run?: CliRun; readonly intervalMs?: number } = {},
): Promise<ResultsDocument> {
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  let last: ResultsDocument | undefined;
  for (;;) {
    // Read the exit state before the file, so a final save is not missed.
    const exitedBefore = options.run?.done ?? false;
    if (existsSync(path)) {
      last = await loadResults(path);
      if (predicate(last)) return last;
    }
    const what = last ? `; last seen:\n${summarize(last)}` : ' (no file yet)';
    if (exitedBefore && options.run) {
      throw new Error(
        `imgjob exited before ${path} reached the awaited state${what}\n${describe(options.run)}`,
      );
    }
    if (performance.now() > deadline) {
      throw new Error(
        `timed out waiting for ${path}${what}${options.run ? `\n${describe(options.run)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}

/** Kills (SIGKILL) every child still running and waits for them: for `afterEach`. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((run) => run.kill('SIGKILL')));
}

/** One line per store: `S1 ongoing done,done,pending`. */
export function summarize(document: ResultsDocument): string {
  return document.stores
    .map(
      (store) =>
        `  ${store.store_id} ${store.status} ${store.images.map((image) => image.status).join(',')}`,
    )
    .join('\n');
}

function describe(run: CliRun): string {
  return `pid ${run.pid}${run.done ? ` (exited ${String(run.child.exitCode ?? run.child.signalCode)})` : ''}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`;
}
