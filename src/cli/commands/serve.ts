/**
 * `imgjob serve`: the command-line face of the server. Reads the flags,
 * starts the server, prints where it listens, and on SIGINT/SIGTERM shuts it
 * down gracefully and exits 0 (a second signal ends the process at once; the
 * database is whole at any instant).
 */
import { isIP } from 'node:net';

import type { Command } from 'commander';

import type { CliIo, StopSignal } from '../io.js';
import { onStopSignals } from '../stop-signals.js';
import { plural } from '../../utils/plural.js';
import {
  addEngineOptions,
  durationOption,
  engineOptionsOf,
  intOption,
  logFormatOption,
  queueRetentionOption,
  type EngineFlags,
} from '../options.js';
import { SERVE_DEFAULTS } from '../../serve/defaults.js';
import { createEventLog, type EventLog, type LogFormat } from '../../log/event-log.js';
import { setEventLog } from '../../log/process-log.js';
import { requireSqlite } from '../sqlite-check.js';

type ServeFlags = EngineFlags & {
  host: string;
  port: number;
  db: string;
  allowPrivate?: boolean;
  maxBody: number;
  maxStores: number;
  maxImages: number;
  allowedHost?: string[];
  allowOrigin?: string[];
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  maxStreams: number;
  maxStreamsPerClient: number;
  streamMaxAge: number;
  logFormat: LogFormat;
  queue?: string;
  queueRetention: number;
};

const collect = (value: string, previous: readonly string[] = []): string[] => [...previous, value];

/** Adds the `serve` command to the program; its action reports its exit code to `setExit`. */
export function addServeCommand(
  program: Command,
  io: Pick<CliIo, 'stderr'>,
  setExit: (code: number) => void,
): Command {
  const serve = program
    .command('serve')
    .description('run the Retail Pulse job API over HTTP, jobs kept in SQLite (resumed on restart)')
    .option('--host <address>', 'address to listen on', SERVE_DEFAULTS.host)
    .addOption(
      intOption('--port <n>', 'port to listen on (0 picks a free one)', SERVE_DEFAULTS.port, 0),
    )
    .option('--db <file>', 'SQLite database of the jobs (created when missing)', 'imgjob.db');
  return addEngineOptions(serve)
    .option(
      '--allow-private',
      'let image URLs reach loopback, private, link-local and cloud-metadata addresses (refused by default)',
    )
    .addOption(
      intOption(
        '--max-body <bytes>',
        'largest request body accepted (413 beyond)',
        SERVE_DEFAULTS.maxBodyBytes,
        1,
      ),
    )
    .addOption(
      intOption(
        '--max-stores <n>',
        'most stores in one submitted job (413 beyond)',
        SERVE_DEFAULTS.maxStores,
        1,
      ),
    )
    .addOption(
      intOption(
        '--max-images <n>',
        'most images in one submitted job (413 beyond)',
        SERVE_DEFAULTS.maxImages,
        1,
      ),
    )
    .option(
      '--allowed-host <name>',
      'another name clients reach the server by, accepted in the Host header (repeatable)',
      collect,
    )
    .option(
      '--allow-origin <origin>',
      'a web page origin (http://host:port) allowed to call the API cross-origin (repeatable)',
      collect,
    )
    .addOption(
      intOption(
        '--headers-timeout <ms>',
        "longest wait for a request's headers",
        SERVE_DEFAULTS.http.headersTimeoutMs,
        1,
      ),
    )
    .addOption(
      intOption(
        '--request-timeout <ms>',
        'longest a whole request, body included, may take to arrive',
        SERVE_DEFAULTS.http.requestTimeoutMs,
        1,
      ),
    )
    .addOption(
      intOption(
        '--keep-alive-timeout <ms>',
        'idle time after which a kept-alive connection is closed',
        SERVE_DEFAULTS.http.keepAliveTimeoutMs,
        1,
      ),
    )
    .addOption(
      intOption(
        '--max-connections <n>',
        'most client connections open at once',
        SERVE_DEFAULTS.http.maxConnections,
        1,
      ),
    )
    .addOption(
      intOption(
        '--max-streams <n>',
        'most dashboard event streams open at once (429 beyond; at most half of --max-connections)',
        SERVE_DEFAULTS.streams.max,
        1,
      ),
    )
    .addOption(
      intOption(
        '--max-streams-per-client <n>',
        'most dashboard event streams one client address may hold (429 beyond)',
        SERVE_DEFAULTS.streams.maxPerClient,
        1,
      ),
    )
    .addOption(
      durationOption(
        '--stream-max-age <duration>',
        'an event stream open this long is closed (the browser reconnects and misses nothing)',
        `${SERVE_DEFAULTS.streams.maxAgeMs / 60_000}m`,
      ),
    )
    .addOption(logFormatOption('log lines on stderr as text or JSON lines'))
    .option('--queue <redis-url>', 'run the stores on `imgjob worker` processes through this Redis')
    .addOption(
      queueRetentionOption(
        'with --queue: how long the keys of a job left unfinished at shutdown stay in Redis (serve takes the job up again on restart)',
      ),
    )
    .addHelpText(
      'after',
      `
Endpoints:
  POST /api/submit/              manifest JSON → 201 {"job_id": 1}
  GET  /api/status?jobid=1       {"status": "ongoing|completed|failed", "job_id": "1"}
  GET  /api/jobs                 recent jobs with their counts
  GET  /api/jobs/1               a job: counts and a summary per store
  DELETE /api/jobs/1             cancel a job (its unfinished stores fail)
  GET  /api/jobs/1/results       the results document of a job
  GET  /healthz                  200 ok, 503 stopping or unhealthy (says why)
  GET  /metrics                  Prometheus metrics (docs/metrics.md)

Submits need Content-Type: application/json. Requests from web pages of other
origins are refused unless --allow-origin names them.

SIGINT/SIGTERM: stop taking jobs and images, write everything, exit 0;
unfinished jobs resume at the next start on the same database.`,
    )
    .action(async (flags: ServeFlags) => {
      setExit(await serveCommand(flags, io));
    });
}

async function serveCommand(flags: ServeFlags, io: Pick<CliIo, 'stderr'>): Promise<number> {
  const format = flags.logFormat;
  const sink = (line: string): void => {
    io.stderr.write(format === 'json' ? `${line}\n` : `imgjob: ${line}\n`);
  };
  const log = createEventLog({ format, sink });
  // Events of the layers below (a host paused, Redis lost) join the same log.
  setEventLog(log);
  try {
    return await serveWith(flags, log, sink);
  } finally {
    setEventLog(undefined);
  }
}

async function serveWith(
  flags: ServeFlags,
  log: EventLog,
  sink: (line: string) => void,
): Promise<number> {
  const format = flags.logFormat;
  const say = (line: string, event: string): void => {
    log.write('info', event, line);
  };
  const storeMaster = flags.storeMaster
    ? {
        // Loaded on use: other commands start without its CSV parser.
        ids: await (await import('../../input/store-master.js')).readStoreMaster(flags.storeMaster),
        source: flags.storeMaster,
      }
    : undefined;
  await requireSqlite();
  // Listening for signals before the server starts: a signal during a long
  // resume still ends in a graceful stop.
  const stopped = nextStopSignal();
  // Loaded here so other commands never load SQLite.
  const { startServer } = await import('../../serve/server.js');
  const server = await startServer({
    host: flags.host,
    port: flags.port,
    dbPath: flags.db,
    options: engineOptionsOf(flags),
    storeMaster,
    allowPrivate: flags.allowPrivate ?? false,
    maxBodyBytes: flags.maxBody,
    limits: { maxStores: flags.maxStores, maxImages: flags.maxImages },
    allowedHosts: flags.allowedHost,
    allowedOrigins: flags.allowOrigin,
    http: {
      headersTimeoutMs: flags.headersTimeout,
      requestTimeoutMs: flags.requestTimeout,
      keepAliveTimeoutMs: flags.keepAliveTimeout,
      maxConnections: flags.maxConnections,
    },
    dashboard: {
      maxStreams: flags.maxStreams,
      maxStreamsPerClient: flags.maxStreamsPerClient,
      streamMaxAgeMs: flags.streamMaxAge,
    },
    log: sink,
    logFormat: format,
    queue: flags.queue,
    queueRetentionMs: flags.queueRetention,
  }).catch((error: unknown) => {
    stopped.dispose();
    throw error;
  });
  for (const warning of server.warnings) log.write('warn', 'resume_warning', warning);
  const resumed = server.resumed.length;
  const resumedNote = resumed > 0 ? `, resumed ${plural(resumed, 'job')}` : '';
  // Tests and scripts read the URL from this line.
  say(`listening on ${server.url} (database ${flags.db}${resumedNote})`, 'listening');
  if (!isLoopback(flags.host))
    say('note: the API has no authentication; reachable beyond this machine', 'note');
  if (flags.allowPrivate)
    say('note: --allow-private: image URLs may reach this machine and its networks', 'note');

  const signal = await stopped.promise;
  say(`${signal}: shutting down (again to quit at once)…`, 'stopping');
  await server.close();
  stopped.dispose();
  say('stopped; unfinished jobs resume at the next start', 'stopped');
  return 0;
}

/**
 * Resolves with the first SIGINT or SIGTERM; a second one ends the process
 * at once (onStopSignals), so a stuck shutdown can be cut short.
 */
function nextStopSignal(): { readonly promise: Promise<StopSignal>; dispose(): void } {
  let dispose = (): void => undefined;
  const promise = new Promise<StopSignal>((resolve) => {
    dispose = onStopSignals(['SIGINT', 'SIGTERM'], resolve);
  });
  return { promise, dispose };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
