/**
 * The server's log: one line per event, as plain text for a person at a
 * terminal or as JSON lines (`--log-format json`) for a log collector. Every
 * JSON line holds `time`, `level`, `event` and `msg`, plus the event's own
 * fields (a job's id, counts, duration…).
 */
import { describeError } from '../utils/errors.js';

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export type LogLevel = 'info' | 'warn' | 'error';

/** The fields of one event; undefined ones are left out. */
export type LogFields = Readonly<Record<string, unknown>>;

export type ServerLog = {
  /** `event` names the kind (`job_submitted`); `msg` says it in words. */
  readonly write: (level: LogLevel, event: string, msg: string, fields?: LogFields) => void;
  /** An error nobody waits for: a bug keeps its stack, an expected failure its one line. */
  readonly error: (msg: string, error: unknown) => void;
};

export type ServerLogOptions = {
  readonly format: LogFormat;
  /** Takes one finished line (no newline). */
  readonly sink: (line: string) => void;
  /** @default () => new Date() */
  readonly now?: (() => Date) | undefined;
};

export function createServerLog(options: ServerLogOptions): ServerLog {
  const now = options.now ?? (() => new Date());
  const write: ServerLog['write'] = (level, event, msg, fields = {}) => {
    if (options.format === 'text') {
      options.sink(level === 'info' ? msg : `${level}: ${msg}`);
      return;
    }
    const line: Record<string, unknown> = { time: now().toISOString(), level, event, msg };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) line[key] = value;
    options.sink(JSON.stringify(line));
  };
  return {
    write,
    error(msg, error) {
      const stack = error instanceof Error && isBug(error) ? error.stack : undefined;
      if (options.format === 'text') {
        options.sink(`${msg}: ${stack ?? describeError(error)}`);
        return;
      }
      write('error', 'error', msg, { error: describeError(error), stack });
    },
  };
}

/** Expected failures (a full disk, a read-only file) carry a code; a bug does not. */
function isBug(error: Error): boolean {
  return typeof (error as { code?: unknown }).code !== 'string';
}
