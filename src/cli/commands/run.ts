import { setFlagsFromString } from 'node:v8';

import type { Command } from 'commander';

import { statusDocument } from '../../results/status-document.js';
import type { ReportTarget } from '../../report/targets.js';
import type { JobReport } from '../../run/run-jobs.js';
import { InputError } from '../../utils/errors.js';
import { EXIT, quote, worstExit, type CliIo } from '../io.js';
import { addEngineOptions, engineOptionsOf, type EngineFlags } from '../options.js';
import { paintFor } from '../paint.js';
import {
  formatDuration,
  renderErrors,
  renderStoreTable,
  renderSummary,
  type Paint,
} from '../render.js';

type RunFlags = EngineFlags & {
  out?: string;
  outDir?: string;
  force?: boolean;
  resume?: boolean;
  failFast?: boolean;
  json?: boolean;
  report?: string;
};

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
    .argument('<manifests...>', 'manifest files (JSON), or - for standard input')
    .option(
      '-o, --out <file>',
      'results file of a single job (default: <manifest>.results.json beside it; results.json for stdin)',
    )
    .option('--out-dir <dir>', 'results files of several jobs: <dir>/<manifest name>.results.json')
    .option('--force', 'overwrite existing results files');
  return addEngineOptions(run)
    .option('--resume', 'continue jobs from their existing results files')
    .option('--fail-fast', 'stop a job at its first failed store')
    .option('--json', 'print the final status JSON of each job on stdout, one per line')
    .option(
      '--report <kind:file,...>',
      'write reports at the end: html:report.html,junit:report.xml,csv:report.csv (- = stdout)',
    )
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
  if (flags.force && flags.resume)
    throw new InputError('E_USAGE', '--force and --resume cannot be used together');
  const reportTargets = flags.report === undefined ? undefined : await parseReports(flags.report);
  // Loaded on use: `--help`, `status` and `serve` start faster without them.
  const [{ runJobs }, { Progress }] = await Promise.all([
    import('../../run/run-jobs.js'),
    import('../progress.js'),
  ]);
  const paint = paintFor(io.stderr);
  const stop = new AbortController();
  const removeSignals = onStopSignals(stop, io);
  const progress = await Progress.create(io.stderr, io.stderr.isTTY && !process.env.CI);
  const started = performance.now();
  let reports: JobReport[];
  try {
    reports = await runJobs({
      manifests,
      out: flags.out,
      outDir: flags.outDir,
      force: flags.force,
      resume: flags.resume,
      storeMasterPath: flags.storeMaster,
      options: { ...engineOptionsOf(flags), failFast: flags.failFast ?? false },
      stdin: io.stdin,
      signal: stop.signal,
      onStart: (jobs) => {
        keepHeapTight(jobs.reduce((sum, job) => sum + job.state.counts.images, 0));
        progress.start(jobs);
      },
    });
  } finally {
    progress.stop();
    removeSignals();
  }

  for (const report of reports) {
    // For the benchmark: what keeping the results file cost this run.
    if (process.env.IMGJOB_STATS === '1')
      io.stderr.write(`imgjob: stats ${JSON.stringify(report.saves)}\n`);
    if (flags.json) {
      io.stdout.write(`${JSON.stringify(statusDocument(report.document))}\n`);
      io.stderr.write(`${renderSummary(report.document, paint)}\n`);
    } else {
      writeJobReport(io.stdout, report, paintFor(io.stdout), performance.now() - started);
    }
  }
  if (reportTargets) await writeRunReports(reportTargets, reports, io);
  if (stop.signal.aborted) {
    io.stderr.write(`imgjob: interrupted; results saved. Resume with: ${resumeCommand(argv)}\n`);
    return stop.signal.reason === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
  }
  return worstExit(reports.map((report) => report.document.status));
}

async function parseReports(spec: string): Promise<ReportTarget[]> {
  const { parseReportTargets } = await import('../../report/targets.js');
  return parseReportTargets(spec);
}

async function writeRunReports(
  targets: readonly ReportTarget[],
  reports: readonly JobReport[],
  io: CliIo,
): Promise<void> {
  const { writeReports } = await import('../../report/write.js');
  const documents = reports.map((report) => report.document);
  for (const path of await writeReports(targets, documents, io.stdout))
    io.stderr.write(`imgjob: report written to ${path}\n`);
}

function writeJobReport(
  stream: NodeJS.WriteStream,
  report: JobReport,
  paint: Paint,
  elapsedMs: number,
): void {
  const { document } = report;
  stream.write(`${renderStoreTable(document, { paint })}\n`);
  const errors = renderErrors(document, paint);
  if (errors) stream.write(`${errors}\n`);
  stream.write(
    `${renderSummary(document, paint)}\n${paint.dim(`results: ${report.resultsPath} (run took ${formatDuration(elapsedMs / 1000)})`)}\n`,
  );
}

/**
 * A huge job keeps ~0.4 KB of results per image alive and makes much
 * short-lived garbage around it; V8 lets the heap grow to ~4× the live set
 * before a full collection, which for 100k images is ~250 MB of RSS. Growing
 * by 1.5× instead keeps it under 200 MB for a few percent more GC time. Not
 * for smaller jobs of big images: there the same policy doubled the CPU time
 * (BENCHMARKS.md), as their live set is small and their buffers large.
 */
function keepHeapTight(images: number): void {
  if (images >= 50_000) setFlagsFromString('--heap-growing-percent=50');
}

function onStopSignals(stop: AbortController, io: CliIo): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    if (stop.signal.aborted) {
      // A second signal: leave now. The files on disk are whole at any instant.
      process.exit(signal === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint);
    }
    io.stderr.write(`\nimgjob: ${signal}: stopping, saving results… (again to quit at once)\n`);
    stop.abort(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

function resumeCommand(argv: readonly string[]): string {
  const args = argv.slice(2).filter((arg) => arg !== '--force' && arg !== '--resume');
  return ['imgjob', ...args, '--resume'].map(quote).join(' ');
}
