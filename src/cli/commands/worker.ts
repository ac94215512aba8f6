/**
 * `imgjob worker --queue <redis-url>`: runs stores for coordinators (`run
 * --queue`, `serve --queue`) on any machine. Prints one line per store it
 * starts, finishes or hands back. SIGINT/SIGTERM: hands its stores back at
 * once (the next worker continues after their last reported image) and exits
 * 130/143; a second signal leaves at once (the stores then come back when
 * their lock expires).
 */
import { Option, type Command } from 'commander';

import { EXIT, type CliIo } from '../io.js';
import {
  DEFAULTS,
  intOption,
  logFormatOption,
  metricsHostOption,
  metricsPortOption,
  threadsOption,
  type MetricsFlags,
} from '../options.js';
import { addNetworkOptions, networkOptionsOf, type NetworkFlags } from '../network-options.js';
import { onStopSignals } from '../stop-signals.js';
import { startCommandMetrics, type CommandMetrics } from '../metrics.js';
import { createEventLog, type EventLog, type LogFormat } from '../../log/event-log.js';
import { setEventLog } from '../../log/process-log.js';
import type { RedisTarget } from '../../queue/redis-url.js';

type WorkerFlags = NetworkFlags & {
  queue: string;
  concurrency: number;
  perHost: number;
  threads: number;
  logFormat: LogFormat;
} & MetricsFlags;

export function addWorkerCommand(
  program: Command,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  setExit: (code: number) => void,
): Command {
  const command = program
    .command('worker')
    .description('run stores for coordinators on other machines, through a Redis queue (BullMQ)')
    .addOption(
      new Option(
        '--queue <redis-url>',
        'the shared queue: redis://[:password@]host:6379/0 or rediss://… (kept out of ps when given as IMGJOB_QUEUE)',
      )
        .env('IMGJOB_QUEUE')
        .makeOptionMandatory(),
    )
    .addOption(
      intOption('-c, --concurrency <n>', 'stores this machine runs at once (its GPU slots)', 8, 1),
    )
    .addOption(
      intOption('--per-host <n>', 'most connections open to one host at once', DEFAULTS.perHost, 1),
    )
    .addOption(threadsOption())
    .addOption(
      logFormatOption(
        'one line per event: text on stdout (as ever), or JSON lines on stderr (also Redis, host and retry events)',
      ),
    )
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .addHelpText(
      'after',
      `
What changes results (GPU delay and seed, --header-only, --max-bytes, --timeout,
--retries, the address guard of serve) comes with each store from its coordinator;
the proxy and the speed limit are this machine's own (its flags and environment).

A Redis error never ends a worker: it keeps its unreported results, waits
with one line ("Redis answers OOM (maxmemory reached): waiting") and says when
Redis is back. A URL it cannot work with (an unknown database, a malformed
password, an evicting Redis) is refused at start with exit 2.

SIGINT/SIGTERM: hand the running stores back to the queue (nothing reported is
redone), then exit 130/143.

A killed worker's stores go to another within the lock's life plus one stall
check: IMGJOB_QUEUE_LOCK_MS (default 25000) and IMGJOB_QUEUE_STALLED_MS
(default 5000), the same on every worker of a queue. A shorter lock moves
them sooner but rides out a shorter Redis outage or pause of the worker.`,
    )
    .action(async (flags: WorkerFlags) => {
      setExit(await workerCommand(flags, io));
    });
  return addNetworkOptions(command);
}

async function workerCommand(
  flags: WorkerFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
): Promise<number> {
  const { parseRedisUrl } = await import('../../queue/redis-url.js');
  const target = parseRedisUrl(flags.queue);
  const json = flags.logFormat === 'json';
  const log = createEventLog({
    format: flags.logFormat,
    // Text stays on stdout, where its lines have always been; JSON goes to stderr.
    sink: json
      ? (line) => io.stderr.write(`${line}\n`)
      : (line) => io.stdout.write(`imgjob worker: ${line}\n`),
  });
  setEventLog(log);
  let metrics: CommandMetrics | undefined;
  try {
    metrics = await startCommandMetrics(flags, log, async () => {
      const reader = (await import('../../queue/queue-stats.js')).openQueueStats(target);
      return {
        stores: () => ({ ongoing: metrics?.tallies.storesRunning ?? 0 }),
        queue: () => reader.read(),
        close: () => reader.close(),
      };
    });
    return await runUntilStopped(flags, io, target, log, metrics);
  } finally {
    setEventLog(undefined);
    await metrics?.close();
  }
}

async function runUntilStopped(
  flags: WorkerFlags,
  io: Pick<CliIo, 'stdout' | 'stderr'>,
  target: RedisTarget,
  log: EventLog,
  metrics: CommandMetrics | undefined,
): Promise<number> {
  const [{ runWorker, DEFAULT_LOCK_TIMING }, { expectWorkerFile }] = await Promise.all([
    import('../../queue/worker.js'),
    import('../../download/threads/worker-file.js'),
  ]);
  // A package without the download threads' module is broken: a bug (exit 70) before any store.
  if (flags.threads > 1) expectWorkerFile();
  const json = flags.logFormat === 'json';
  const stop = new AbortController();
  const removeSignals = onStopSignals(['SIGINT', 'SIGTERM'], (signal) => {
    if (json) {
      log.event('stopping', `${signal}: handing back running stores…`, { signal }, 'notice');
    } else {
      io.stderr.write(
        `\nimgjob worker: ${signal}: handing back running stores… (again to quit at once)\n`,
      );
    }
    stop.abort(signal);
  });
  try {
    await runWorker(
      {
        target,
        concurrency: flags.concurrency,
        perHost: flags.perHost,
        threads: flags.threads,
        network: networkOptionsOf(flags),
        timing: {
          // The operator's trade (docs/queue.md, --help): a dead worker's
          // stores move on sooner, Redis weather is ridden out for less long.
          lockDurationMs: envMs('IMGJOB_QUEUE_LOCK_MS') ?? DEFAULT_LOCK_TIMING.lockDurationMs,
          stalledIntervalMs:
            envMs('IMGJOB_QUEUE_STALLED_MS') ?? DEFAULT_LOCK_TIMING.stalledIntervalMs,
        },
        // Hidden knob for tests: a killed worker's listing expires after three beats.
        heartbeatMs: envMs('IMGJOB_WORKER_HEARTBEAT_MS'),
        log,
        metrics: metrics?.tallies,
      },
      stop.signal,
    );
  } finally {
    removeSignals();
  }
  if (!stop.signal.aborted) return EXIT.completed;
  if (json) log.event('stopped', 'stopped; every store it held is back in the queue', {}, 'notice');
  else io.stderr.write('imgjob worker: stopped; every store it held is back in the queue\n');
  return stop.signal.reason === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
}

function envMs(name: string): number | undefined {
  const value = Number(process.env[name]);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
