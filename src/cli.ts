import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

import { Command, CommanderError } from 'commander';

import { addEngineOptions, DEFAULTS, engineOptionsOf, type EngineFlags } from './cli-options.js';

import { InputError } from './errors.js';
import {
  ansiPaint,
  formatDuration,
  noColor,
  renderErrors,
  renderStoreTable,
  renderSummary,
  statusDocument,
  type Paint,
} from './report.js';
import { isWriterAlive, loadResults } from './results.js';
import type { JobReport } from './run.js';
import { addServeCommand } from './serve/command.js';
import type { JobStatus, ResultsDocument } from './types.js';

/** Exit codes of SPEC.md. */
export const EXIT = {
  completed: 0,
  failed: 1,
  usage: 2,
  unfinished: 3,
  sigint: 130,
  sigterm: 143,
} as const;

type RunFlags = EngineFlags & {
  out?: string;
  outDir?: string;
  force?: boolean;
  resume?: boolean;
  failFast?: boolean;
  json?: boolean;
};

export type CliIo = {
  readonly stdout: NodeJS.WriteStream;
  readonly stderr: NodeJS.WriteStream;
  readonly stdin: NodeJS.ReadStream;
};

/** Runs the CLI on `argv` (as `process.argv`) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = process): Promise<number> {
  // `imgjob status x | head -1`: a reader that leaves early is no error; the
  // results file, not stdout, is what a run must finish.
  io.stdout.on('error', ignoreClosedPipe);
  let exitCode: number = EXIT.completed;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end with code 0; every other parse error is usage.
      return error.exitCode === 0 ? EXIT.completed : EXIT.usage;
    }
    if (error instanceof InputError) {
      for (const line of error.problems) io.stderr.write(`imgjob: ${line}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  return exitCode;
}

function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('imgjob')
    .description(
      'Batch processor for store-image jobs: download, measure, perimeter, simulated GPU.',
    )
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    });

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
  addEngineOptions(run)
    .option('--resume', 'continue jobs from their existing results files')
    .option('--fail-fast', 'stop a job at its first failed store')
    .option('--json', 'print the final status JSON of each job on stdout, one per line')
    .action(async (manifests: string[], flags: RunFlags) => {
      setExit(await runCommand(manifests, flags, io));
    });

  program.addHelpText(
    'after',
    `
Examples:
  imgjob run manifest.json                       # → manifest.results.json + a table
  imgjob run a.json b.json --out-dir out --json  # two jobs at once, status JSON per line
  imgjob run manifest.json --resume              # continue after a crash or Ctrl-C
  imgjob status manifest.results.json            # where does the job stand?

Exit codes: 0 completed · 1 failed · 2 bad input or usage · 3 (status) unfinished
            130 interrupted by SIGINT · 143 by SIGTERM (results saved, resumable)`,
  );

  program
    .command('status')
    .description('where does a job stand? (works while it runs)')
    .argument('<results>', 'a results file written by imgjob run')
    .option('--json', 'print the status JSON of the job')
    .action(async (path: string, flags: { json?: boolean }) => {
      setExit(await statusCommand(path, flags, io));
    });

  addServeCommand(program, io, setExit);
  return program;
}

async function runCommand(manifests: string[], flags: RunFlags, io: CliIo): Promise<number> {
  if (flags.force && flags.resume)
    throw new InputError('E_USAGE', '--force and --resume cannot be used together');
  // Loaded on use: `--help`, `status` and `serve` start faster without them.
  const [{ runJobs }, { Progress }] = await Promise.all([
    import('./run.js'),
    import('./progress.js'),
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
  if (stop.signal.aborted) {
    io.stderr.write(`imgjob: interrupted; results saved. Resume with: ${resumeCommand()}\n`);
    return stop.signal.reason === 'SIGTERM' ? EXIT.sigterm : EXIT.sigint;
  }
  return worstExit(reports.map((report) => report.document.status));
}

async function statusCommand(path: string, flags: { json?: boolean }, io: CliIo): Promise<number> {
  const document = await loadResults(path);
  if (flags.json) {
    io.stdout.write(`${JSON.stringify(statusDocument(document))}\n`);
  } else {
    const paint = paintFor(io.stdout);
    io.stdout.write(`${renderSummary(document, paint)}\n`);
    if (document.status === 'ongoing') io.stdout.write(`${describeWriter(document, path)}\n`);
    io.stdout.write(`${renderStoreTable(document, { paint })}\n`);
    const errors = renderErrors(document, paint);
    if (errors) io.stdout.write(`${errors}\n`);
  }
  return worstExit([document.status]);
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

function describeWriter(document: ResultsDocument, path: string): string {
  if (isWriterAlive(document)) {
    return `running (pid ${document.writer?.pid ?? '?'}); run this again to see it progress`;
  }
  const how = document.interrupted ? 'was interrupted' : 'is not running (killed?)';
  return `the run ${how}; continue it with: ${resumeHint(document, path)}`;
}

/** The `run --resume` command that continues a job, with the options it was made with. */
function resumeHint(document: ResultsDocument, path: string): string {
  const { options } = document;
  const args = ['imgjob', 'run', document.manifest_source, '-o', path, '--resume'];
  args.push('--gpu-delay', options.gpu_delay);
  if (options.seed !== null) args.push('--seed', String(options.seed));
  if (options.header_only) args.push('--header-only');
  if (options.max_bytes !== DEFAULTS.maxBytes) args.push('--max-bytes', String(options.max_bytes));
  if (options.store_master !== null) args.push('--store-master', '<the same store master>');
  return args.map(quote).join(' ');
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

function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
}

/** Exit code of several jobs: the worst of them. */
export function worstExit(statuses: readonly JobStatus[]): number {
  if (statuses.includes('ongoing')) return EXIT.unfinished;
  if (statuses.includes('failed')) return EXIT.failed;
  return EXIT.completed;
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

function resumeCommand(): string {
  const args = process.argv.slice(2).filter((arg) => arg !== '--force' && arg !== '--resume');
  return ['imgjob', ...args, '--resume'].map(quote).join(' ');
}

function quote(arg: string): string {
  return /^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function paintFor(stream: NodeJS.WriteStream): Paint {
  return stream.isTTY && stream.hasColors() ? ansiPaint() : noColor;
}

function packageVersion(): string {
  const raw = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(raw) as { version: string }).version;
}
