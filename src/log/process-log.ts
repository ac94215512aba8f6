/**
 * The process's one event log. Events come from layers that have no other
 * reason to carry a logger — the downloader pausing a host, the queue's Redis
 * connection going away and coming back — so they write here, and the
 * command that runs (`run`, `worker`, `serve`) decides once, at its start,
 * where the lines go and in which form (`--log-format`). Until it does, and
 * in a library, events go nowhere.
 *
 * ```ts
 * import { log } from '../log/process-log.js';
 * log.event('redis_lost', `lost Redis at ${target.safe}; retrying`, { redis: target.safe }, 'warn');
 * ```
 *
 * In a download thread (src/download/threads) this module is a separate copy
 * that nobody configures: a thread reports to the main thread, which logs.
 * Event names are snake_case and listed in docs/metrics.md with their fields.
 */
import { SILENT_LOG, type EventLog } from './event-log.js';

let current: EventLog = SILENT_LOG;

/** Writes through whichever log the command set (see setEventLog). */
export const log: EventLog = {
  event: (name, msg, fields, level) => {
    current.event(name, msg, fields, level);
  },
  write: (level, event, msg, fields) => {
    current.write(level, event, msg, fields);
  },
  error: (msg, error) => {
    current.error(msg, error);
  },
  wants: (level) => current.wants(level),
};

/** Points the process log at `next` (the CLI, once per command); undefined silences it again. */
export function setEventLog(next: EventLog | undefined): void {
  current = next ?? SILENT_LOG;
}
