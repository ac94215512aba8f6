import { closeSync, fstatSync, openSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

import type { Command } from 'commander';

import type { ReportTarget } from '../../report/targets.js';
import type { JobReport, RunningJob } from '../../run/run-jobs.js';
import { InputError } from '../../utils/errors.js';
import { redactProxy } from '../../download/proxy.js';
import { withResultsFileHints } from '../hints.js';
import { quote, STOP_SIGNALS, worstExit, type CliIo, type StopSignal } from '../io.js';
import { onStopSignals } from '../stop-signals.js';
import { heapGrowingPercent, TIGHT_PERCENT } from '../../run/heap-growth.js';
import { plural } from '../../utils/plural.js';
import { formatBytes } from '../../shared/bytes.js';
import { jobJsonLine } from '../job-json.js';
import { redactText } from '../../queue/redis-url.js';
import type { InputFormat } from '../../input/manifest-parser.js';
import {
  addEngineOptions,
  durationOption,
  engineOptionsOf,
  inputFormatOption,
  logFormatOption,
  metricsHostOption,
  metricsPortOption,
  queueRetentionOption,
  type EngineFlags,
  type MetricsFlags,
} from '../options.js';
import { startCommandMetrics, type CommandMetrics } from '../metrics.js';
import { sumCounts } from '../../metrics/state-counts.js';
import type { MetricSources } from '../../metrics/exposition.js';
import { createEventLog, type EventLog, type LogFormat } from '../../log/event-log.js';
import { setEventLog } from '../../log/process-log.js';
import { outputWidth, paintFor, wantsColor, type Paint } from '../paint.js';

type RunFlags = EngineFlags & {
  out?: string;
  outDir?: string;
  force?: boolean;
  resume?: boolean;
  retryFailed?: boolean;
  failFast?: boolean;
  json?: boolean;
  progress: boolean;
  queue?: string;
  queueWait: number;
  queueRetention: number;
  report?: string;
  logFormat: LogFormat;
  inputFormat?: InputFormat;
} & MetricsFlags;

/** This run's share of a job's work: what was recorded before it started is not counted. */
type Baseline = { readonly worked: number; readonly bytes: number };

/** `imgjob run <manifests...>`: one job per manifest, all at once. */
export function addRunCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
  argv: readonly string[],
): Command {
  const run = program
    .command('run')
    .description(
      'process jobs: one manifest = one job; several run at once over one concurrency limit',
    )
    .argument('<manifests...>', 'manifest files (JSON, JSON Lines or CSV), or - for standard input')
    .option(
      '-o, --out <file>',
      'results file of a single job (default: <manifest>.results.json beside it; results.json for stdin)',
    )
    .option('--out-dir <dir>', 'results files of several jobs: <dir>/<manifest name>.results.json')
    .option('--force', 'overwrite existing results files')
    .addOption(inputFormatOption());
  return addEngineOptions(run)
    .option('--resume', 'continue jobs from their existing results files')
    .option(
      '--retry-failed',
      'with --resume (implied): take up failed and fail-fast-skipped stores again from their failed image; done images stay',
    )
    .option('--fail-fast', 'stop a job at its first failed store')
    .option(
      '--json',
      'print the final status JSON of each job on stdout, one per line (with counts and results_path)',
    )
    .option(
      '--no-progress',
      'no live progress on stderr (also off when CI is set or not a terminal)',
    )
    .option('--queue <redis-url>', 'run the stores on `imgjob worker` processes through this Redis')
    .addOption(
      durationOption(
        '--queue-wait <duration>',
        'with --queue: how long an unusable Redis is waited for before the run saves and exits 75',
        '10m',
      ),
    )
    .addOption(
      queueRetentionOption(
        "with --queue: how long an unfinished job's keys stay in Redis for --resume",
      ),
    )
    .option(
      '--report <kind:file,...>',
      'write reports at the end: html:report.html,junit:report.xml,csv:report.csv (- = stdout)',
    )
    .addOption(
      logFormatOption(
        'events on stderr as text (notices and warnings only) or JSON lines (every job and store event; no progress)',
      ),
    )
    .addOption(metricsPortOption())
    .addOption(metricsHostOption())
    .action(async (manifests: string[], flags: RunFlags) => {
      setExit(await runCommand(manifests, flags, io, argv));
    });
}

async function runCommand(
  manifests: string[],
  flags: RunFlags,
  io: CliIo,
  argv: readonly string[],
): Promise<number> {
  if (flags.force && (flags.resume || flags.retryFailed)) {
    const other = flags.resume ? '--resume' : '--retry-failed';
    throw new InputError('E_USAGE', `--force and ${other} cannot be used together`);
  }
  const reportTargets = flags.report === undefined ? undefined : await parseReports(flags.report);
  // Loaded on use: `--help`, `status` and `serve` start faster without them.
  const [{ runJobs }, { Progress, progressWanted }] = await Promise.all([
    import('../../run/run-jobs.js'),
    import('../progress.js'),
  ]);
  const paint = paintFor(io.stderr);
  const json = flags.logFormat === 'json';
  const log = createEventLog({
    format: flags.logFormat,
    sink: (line) => io.stderr.write(json ? `${line}\n` : `imgjob: ${line}\n`),
    textLevel: 'notice',
  });
  setEventLog(log);
  const stop = new AbortController();
  const removeSignals = stopOnSignals(stop, io, log);
  const progress = await Progress.create(
    io.stderr,
    // JSON lines are for a log collector: no spinner among them.
    progressWanted(io.stderr, { disabled: !flags.progress || json, env: process.env }),
    wantsColor(io.stderr),
  );
  const started = performance.now();
  const baselines = new Map<string, Baseline>();
  let running: readonly RunningJob[] = [];
  let metrics: CommandMetrics | undefined;
  let reports: JobReport[];
  // Tight until the job's size is known: V8 sets the next full collection's
  // limit at each one, so the growth in force while a big manifest is read
  // holds until well into the run (a 1M-image job's heap went to 3.4× its
  // live set before its second full collection, 36 s in).
  setHeapGrowth(TIGHT_PERCENT);
  try {
    metrics = await startCommandMetrics(flags, log, () => runSources(() => running, flags.queue));
    reports = await runJobs({
      manifests,
      inputFormat: flags.inputFormat,
      out: flags.out,
      outDir: flags.outDir,
      force: flags.force,
      resume: (flags.resume ?? false) || (flags.retryFailed ?? false),
      retryFailed: flags.retryFailed,
      storeMasterPath: flags.storeMaster,
      options: { ...engineOptionsOf(flags), failFast: flags.failFast ?? false },
      stdin: io.stdin,
      signal: stop.signal,
      queue: flags.queue,
      queueWaitMs: flags.queueWait,
      queueRetentionMs: flags.queueRetention,
      // Hidden knob for tests: the 30 s of quiet before "waiting: … workers".
      queueNoticeMs: Number(process.env.IMGJOB_QUEUE_NOTICE_MS) || undefined,
      onQueueNotice: (line) => {
        log.event('queue', line, {}, 'notice');
      },
      metrics: metrics?.tallies,
      onStart: (jobs, network) => {
        running = jobs;
        const images = jobs.reduce((sum, job) => sum + job.state.counts.images, 0);
        setHeapGrowth(heapGrowingPercent(images, process.memoryUsage().heapUsed));
        for (const job of jobs) baselines.set(job.resultsPath, workOf(job));
        for (const job of jobs.filter((candidate) => candidate.resumed))
          progress.note(resumingLine(job, jobs.length > 1));
        progress.start(jobs, network);
      },
    });
  } catch (error) {
    throw withResultsFileHints(error, manifests);
  } finally {
    progress.stop();
    removeSignals();
    setEventLog(undefined);
    await metrics?.close();
  }

  for (const report of reports) {
    // For the benchmark: what keeping the results file cost this run.
    if (process.env.IMGJOB_STATS === '1')
      io.stderr.write(`imgjob: stats ${JSON.stringify(report.saves)}\n`);
    const elapsedMs = performance.now() - started;
    const work = await thisRun(report, baselines.get(report.resultsPath), elapsedMs);
    if (flags.json) {
      io.stdout.write(jobJsonLine(report.summary, report.resultsPath));
      // With JSON lines, job_finished has said it.
      if (!json) io.stderr.write(`${(await loadRender()).renderSummary(report.summary, paint)}\n`);
    } else {
      await writeJobReport(io.stdout, report, paintFor(io.stdout), work);
    }
  }
  if (reportTargets) await writeRunReports(reportTargets, reports, io, log);
  if (stop.signal.aborted) {
    const resume = resumeCommand(argv);
    log.event(
      'interrupted',
      `interrupted; results saved. Resume with: ${resume}`,
      { resume },
      'notice',
    );
    const signal = stop.signal.reason as StopSignal;
    if (signal === 'SIGHUP' && io === process) detachFromHungUpTerminal();
    return STOP_SIGNALS[signal];
  }
  const failedStores = reports.reduce(
    (sum, report) => sum + report.summary.stores.filter((s) => s.status === 'failed').length,
    0,
  );
  if (failedStores > 0) {
    const retry = resumeCommand(argv, '--retry-failed');
    log.event(
      'retry_hint',
      `${plural(failedStores, 'store')} failed; once the cause is fixed, take ${failedStores === 1 ? 'it' : 'them'} up again with: ${retry}`,
      { failed_stores: failedStores, retry },
      'notice',
    );
  }
  return worstExit(reports.map((report) => report.summary.status));
}

/** What `run --metrics-port` shows beside the tallies: its jobs' stores and states, the queue. */
async function runSources(
  jobs: () => readonly RunningJob[],
  queue: string | undefined,
): Promise<MetricSources & { readonly close?: () => Promise<void> }> {
  const sources: MetricSources = {
    stores: () => sumCounts(jobs().map((job) => job.state.storeCounts)),
    jobs: () => sumCounts(jobs().map((job) => ({ [job.state.status]: 1 }))),
  };
  if (queue === undefined) return sources;
  const [{ parseRedisUrl }, { openQueueStats }] = await Promise.all([
    import('../../queue/redis-url.js'),
    import('../../queue/queue-stats.js'),
  ]);
  const reader = openQueueStats(parseRedisUrl(queue));
  return { ...sources, queue: () => reader.read(), close: () => reader.close() };
}

async function parseReports(spec: string): Promise<ReportTarget[]> {
  const { parseReportTargets } = await import('../../report/targets.js');
  return parseReportTargets(spec);
}

async function writeRunReports(
  targets: readonly ReportTarget[],
  reports: readonly JobReport[],
  io: CliIo,
  log: EventLog,
): Promise<void> {
  const [{ writeReports }, { reportJobOf }] = await Promise.all([
    import('../../report/write.js'),
    import('../../report/report-job.js'),
  ]);
  const jobs = reports.map((report) => reportJobOf(report.document));
  for (const path of await writeReports(targets, jobs, io.stdout))
    // Worded as `imgjob report` says it: `imgjob: wrote <file>`.
    log.event('report_written', `wrote ${path}`, { path }, 'notice');
}

/**
 * The table and the summary lines (cli-table3): loaded once run prints them
 * (its progress line has them already), so that `--version`, `status
 * --json` and the rest start without them.
 */
function loadRender(): Promise<typeof import('../render.js')> {
  return import('../render.js');
}

async function writeJobReport(
  stream: NodeJS.WriteStream,
  report: JobReport,
  paint: Paint,
  work: string,
): Promise<void> {
  const { renderErrors, renderStoreTable, renderSummary } = await loadRender();
  const document = report.summary;
  const table = renderStoreTable(document, { paint, width: outputWidth(stream) });
  if (table) stream.write(`${table}\n`);
  const errors = renderErrors(document, paint);
  if (errors) stream.write(`${errors}\n`);
  stream.write(
    `${renderSummary(document, paint)}\n${paint.dim(`results: ${report.resultsPath}`)}\n${paint.dim(work)}\n`,
  );
}

/** `imgjob: resuming: 111 of 322 images already done` (with the results file when there are several jobs). */
function resumingLine(job: RunningJob, named: boolean): string {
  const { images, pending } = job.state.counts;
  const where = named ? ` (${job.resultsPath})` : '';
  return `imgjob: resuming: ${images - pending} of ${plural(images, 'image')} already done${where}`;
}

function workOf(job: RunningJob): Baseline {
  const { counts } = job.state;
  return { worked: counts.done + counts.failed, bytes: job.state.bytesDone };
}

/** `run took 3.2s: 14 images at 4.4 images/s, 1.2 MB at 0.4 MB/s` */
async function thisRun(
  report: JobReport,
  before: Baseline | undefined,
  elapsedMs: number,
): Promise<string> {
  const { formatDuration } = await loadRender();
  const { counts } = report.summary;
  const images = counts.done + counts.failed - (before?.worked ?? 0);
  const bytes = report.bytesDone - (before?.bytes ?? 0);
  const seconds = elapsedMs / 1000;
  const rate = (value: number): number => (seconds > 0 ? value / seconds : 0);
  // A resumed job that had nothing left: no rate to speak of.
  if (images === 0) return `run took ${formatDuration(seconds)}: no image was left to process`;
  return (
    `run took ${formatDuration(seconds)}: ${plural(images, 'image')} at ${rate(images).toFixed(1)} images/s, ` +
    `${formatBytes(bytes)} at ${formatBytes(rate(bytes))}/s`
  );
}

/** The heap's growth between full collections (run/heap-growth.ts). */
function setHeapGrowth(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/**
 * SIGINT, SIGTERM and SIGHUP (the terminal went away) all stop the run the
 * same way: no new images, results saved, exit 128 + the signal's number.
 */
function stopOnSignals(stop: AbortController, io: CliIo, log: EventLog): () => void {
  return onStopSignals(
    Object.keys(STOP_SIGNALS) as StopSignal[],
    (signal) => {
      // Off the progress line first.
      if (!log.wants('info')) io.stderr.write('\n');
      log.event(
        'stopping',
        `${signal}: stopping, saving results… (again to quit at once)`,
        { signal },
        'notice',
      );
      stop.abort(signal);
    },
    // A second signal leaves at once: the files on disk are whole at any instant.
    (signal) => {
      if (signal === 'SIGHUP') detachFromHungUpTerminal();
    },
  );
}

/**
 * Node aborts (SIGABRT, a core dump) on its way out when it cannot restore
 * the modes of a terminal that hung up (tcsetattr fails with EIO). With the
 * results saved, the standard streams still on that terminal are pointed at
 * /dev/null, which Node then leaves alone, so the exit is a plain 129.
 */
function detachFromHungUpTerminal(): void {
  for (const fd of [0, 1, 2]) {
    // Not isatty(): on a hung-up terminal it fails (EIO), so it says no.
    if (!onCharacterDevice(fd)) continue;
    closeSync(fd);
    // The lowest free descriptor: this one, so nothing else takes its number.
    openSync('/dev/null', 'r+');
  }
}

function onCharacterDevice(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice();
  } catch {
    return false;
  }
}

function resumeCommand(argv: readonly string[], how = '--resume'): string {
  const args = argv
    .slice(2)
    .filter((arg) => arg !== '--force' && arg !== '--resume' && arg !== '--retry-failed')
    // A proxy's password is not printed back either.
    .map((arg) => (/^https?:\/\/[^/@]*@/i.test(arg) ? redactProxy(arg) : arg));
  // A --queue URL's password never reaches a terminal or a log.
  return ['imgjob', ...args, how].map((arg) => quote(redactText(arg))).join(' ');
}
