/**
 * The event log every command shares (`serve`, `run`, `worker`): one line per
 * event, as plain text for a person at a terminal or as JSON lines
 * (`--log-format json`) for a log collector. Every JSON line holds `time`,
 * `level`, `event` and `msg`, plus the event's own fields (a job's id,
 * counts, duration…). docs/metrics.md lists the events and their fields.
 *
 * ```ts
 * log.event('host_paused', `paused ${host} for 30 s (HTTP 429)`, { host, seconds: 30 }, 'warn');
 * ```
 */
import { describeError } from '../utils/errors.js';
import { outsideText, safeJson } from '../shared/outside-text.js';

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/**
 * `notice` is an `info` a person at the terminal should see even where the
 * text form leaves the routine events out (`run` shows notices, warnings and
 * errors; its stderr belongs to the progress line).
 */
export type LogLevel = 'info' | 'notice' | 'warn' | 'error';

/** The fields of one event; undefined ones are left out. */
export type LogFields = Readonly<Record<string, unknown>>;

export type EventLog = {
  /**
   * One event: `name` says its kind in snake_case (`store_finished`), `msg`
   * says it in words for the text form. @param level @default 'info'
   */
  readonly event: (name: string, msg: string, fields?: LogFields, level?: LogLevel) => void;
  /** The same, level first (what `serve` has always called). */
  readonly write: (level: LogLevel, event: string, msg: string, fields?: LogFields) => void;
  /** An error nobody waits for: a bug keeps its stack, an expected failure its one line. */
  readonly error: (msg: string, error: unknown) => void;
  /**
   * Whether an event of `level` would be written: frequent events (one per
   * store) check it before they build their message.
   */
  readonly wants: (level: LogLevel) => boolean;
};

export type EventLogOptions = {
  readonly format: LogFormat;
  /** Takes one finished line (no newline). */
  readonly sink: (line: string) => void;
  /**
   * Least level the text form shows (`run` keeps its stderr for progress and
   * warnings); JSON lines show every level.
   * @default 'info'
   */
  readonly textLevel?: LogLevel | undefined;
  /** @default () => new Date() */
  readonly now?: (() => Date) | undefined;
};

const RANK: Readonly<Record<LogLevel, number>> = { info: 0, notice: 1, warn: 2, error: 3 };

export function createEventLog(options: EventLogOptions): EventLog {
  const now = options.now ?? (() => new Date());
  const least = options.format === 'json' ? 0 : RANK[options.textLevel ?? 'info'];
  const wants = (level: LogLevel): boolean => RANK[level] >= least;
  const write: EventLog['write'] = (level, event, msg, fields = {}) => {
    if (!wants(level)) return;
    // A message carries text from outside (store errors, host names): one
    // line, its controls escaped, so a log read in a terminal obeys none.
    if (options.format === 'text') {
      const text = outsideText(msg);
      options.sink(level === 'info' || level === 'notice' ? text : `${level}: ${text}`);
      return;
    }
    const line: Record<string, unknown> = { time: now().toISOString(), level, event, msg };
    for (const [key, value] of Object.entries(fields)) if (value !== undefined) line[key] = value;
    options.sink(safeJson(JSON.stringify(line)));
  };
  return {
    write,
    event(name, msg, fields, level = 'info') {
      write(level, name, msg, fields);
    },
    error(msg, error) {
      const stack = error instanceof Error && isBug(error) ? error.stack : undefined;
      if (options.format === 'text') {
        options.sink(`${outsideText(msg)}: ${stack ?? outsideText(describeError(error))}`);
        return;
      }
      write('error', 'error', msg, { error: describeError(error), stack });
    },
    wants,
  };
}

/** A log that writes nothing. */
export const SILENT_LOG: EventLog = {
  event: () => undefined,
  write: () => undefined,
  error: () => undefined,
  wants: () => false,
};

/** Expected failures (a full disk, a read-only file) carry a code; a bug does not. */
function isBug(error: Error): boolean {
  return typeof (error as { code?: unknown }).code !== 'string';
}
