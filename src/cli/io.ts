import type { JobStatus } from '../types.js';

/** The streams a command talks to: the process's own, or a test's. */
export type CliIo = {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
};

/** Exit codes, as the README documents them. */
export const EXIT = {
  completed: 0,
  failed: 1,
  usage: 2,
  unfinished: 3,
  /** A bug (EX_SOFTWARE): never to be read as "the job failed". */
  internal: 70,
  /** The queue's Redis stayed unusable past --queue-wait (EX_TEMPFAIL): results saved, resumable. */
  tempfail: 75,
  /** The terminal hung up (SIGHUP): results saved, resumable. */
  sighup: 129,
  sigint: 130,
  sigterm: 143,
} as const;

/** The signals a run stops on, and the exit code of each (128 + its number). */
export const STOP_SIGNALS = {
  SIGHUP: EXIT.sighup,
  SIGINT: EXIT.sigint,
  SIGTERM: EXIT.sigterm,
} as const;
export type StopSignal = keyof typeof STOP_SIGNALS;

/** Exit code of several jobs: the worst of them. */
export function worstExit(statuses: readonly JobStatus[]): number {
  if (statuses.includes('ongoing')) return EXIT.unfinished;
  if (statuses.includes('failed')) return EXIT.failed;
  return EXIT.completed;
}

/** A shell word: quoted only when it must be. */
export function quote(arg: string): string {
  return /^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
