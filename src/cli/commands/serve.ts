/**
 * `imgjob serve`: the command-line face of the server. Reads the flags,
 * starts the server, prints where it listens, and on SIGINT/SIGTERM shuts it
 * down gracefully and exits 0 (a second signal ends the process at once; the
 * database is whole at any instant).
 */
import { isIP } from 'node:net';

import type { Command } from 'commander';

import type { CliIo } from '../io.js';
import { addEngineOptions, engineOptionsOf, intOption, type EngineFlags } from '../options.js';
import { SERVE_DEFAULTS } from '../../serve/defaults.js';

type ServeFlags = EngineFlags & {
  host: string;
  port: number;
  db: string;
  allowPrivate?: boolean;
  maxBody: number;
};

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
    .addHelpText(
      'after',
      `
Endpoints:
  POST /api/submit/              manifest JSON → 201 {"job_id": 1}
  GET  /api/status?jobid=1       {"status": "ongoing|completed|failed", "job_id": "1"}
  GET  /api/jobs                 recent jobs with their counts
  GET  /api/jobs/1/results       the results document of a job
  GET  /healthz

SIGINT/SIGTERM: stop taking jobs and images, write everything, exit 0;
unfinished jobs resume at the next start on the same database.`,
    )
    .action(async (flags: ServeFlags) => {
      setExit(await serveCommand(flags, io));
    });
}

async function serveCommand(flags: ServeFlags, io: Pick<CliIo, 'stderr'>): Promise<number> {
  const say = (line: string): void => {
    io.stderr.write(`imgjob: ${line}\n`);
  };
  const storeMaster = flags.storeMaster
    ? {
        // Loaded on use: other commands start without its CSV parser.
        ids: await (await import('../../input/store-master.js')).readStoreMaster(flags.storeMaster),
        source: flags.storeMaster,
      }
    : undefined;
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
    log: say,
  }).catch((error: unknown) => {
    stopped.dispose();
    throw error;
  });
  for (const warning of server.warnings) say(warning);
  const resumed = server.resumed.length;
  const resumedNote = resumed > 0 ? `, resumed ${resumed} job${resumed === 1 ? '' : 's'}` : '';
  // Tests and scripts read the URL from this line.
  say(`listening on ${server.url} (database ${flags.db}${resumedNote})`);
  if (!isLoopback(flags.host))
    say('note: the API has no authentication; reachable beyond this machine');
  if (flags.allowPrivate)
    say('note: --allow-private: image URLs may reach this machine and its networks');

  const signal = await stopped.promise;
  say(`${signal}: shutting down (again to quit at once)…`);
  await server.close();
  say('stopped; unfinished jobs resume at the next start');
  return 0;
}

/**
 * Resolves with the first SIGINT or SIGTERM, then lets the next one take its
 * default course (end the process), so a stuck shutdown can be cut short.
 */
function nextStopSignal(): { readonly promise: Promise<NodeJS.Signals>; dispose(): void } {
  let handler: (signal: NodeJS.Signals) => void = () => undefined;
  const dispose = (): void => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  const promise = new Promise<NodeJS.Signals>((resolve) => {
    handler = (signal) => {
      dispose();
      resolve(signal);
    };
  });
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { promise, dispose };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}
