/**
 * Runs the CLI's entry, `main(argv, io)`, in this process with captured
 * streams: what a usage error or a quick command prints and the exit code it
 * returns, without the half second a spawned Node costs (citty's
 * `runMain(cmd, { rawArgs })`, changesets' in-process CLI tests). What only a
 * real process can show — the exit code the OS sees, signals, a stack trace
 * that escapes — stays with `spawnCli()`/`runCli()` from `./cli.js`.
 *
 * ```ts
 * const { code, stdout, stderr } = await runMain(['run', manifest, '-c', '0']);
 * const plain = await withEnv({ NO_COLOR: '1' }, () => runJobHere(['run', manifest]));
 * ```
 */
import { PassThrough, type Writable } from 'node:stream';

import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import type { CliResult } from './cli.js';

export type MainResult = Omit<CliResult, 'signal'>;

export type MainOptions = {
  /** The whole standard input (closed after). @default nothing */
  readonly stdin?: string | Uint8Array;
  /** A stdout of the test's own (a closed pipe, a broken stream) instead of the captured one. */
  readonly stdout?: Writable;
  /** A stderr of the test's own (read as it grows, a terminal) instead of the captured one. */
  readonly stderr?: Writable;
};

/** `imgjob <args>` through `main()`. */
export async function runMain(
  args: readonly string[],
  options: MainOptions = {},
): Promise<MainResult> {
  const out = capture();
  const err = capture();
  const stdin = new PassThrough();
  stdin.end(options.stdin);
  const io: CliIo = {
    stdout: (options.stdout ?? out.stream) as unknown as NodeJS.WriteStream,
    stderr: (options.stderr ?? err.stream) as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
  };
  const code = await main(['node', 'imgjob', ...args], io);
  return { code, stdout: out.text(), stderr: err.text() };
}

/**
 * `imgjob run …` (`args` start with `run`) through `main()`, its downloads on
 * the main thread (`--threads 1`): the download threads' module exists only
 * in the built `dist/`, not beside the sources this process runs.
 */
export function runJobHere(args: readonly string[], options?: MainOptions): Promise<MainResult> {
  return runMain([...args, '--threads', '1'], options);
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { stream, text: () => text };
}

/**
 * Runs `body` with `variables` set (`undefined`: unset) and puts them back as
 * they were after: the files of a vitest worker share its `process.env`.
 */
export async function withEnv<T>(
  variables: Readonly<Record<string, string | undefined>>,
  body: () => Promise<T>,
): Promise<T> {
  const before = Object.fromEntries(
    Object.keys(variables).map((name) => [name, process.env[name]]),
  );
  setEnv(variables);
  try {
    return await body();
  } finally {
    setEnv(before);
  }
}

function setEnv(variables: Readonly<Record<string, string | undefined>>): void {
  for (const [name, value] of Object.entries(variables)) {
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
}
