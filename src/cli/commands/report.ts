import type { Command } from 'commander';

import type { ResultsStream } from '../../results/results-stream.js';
import type { ReportKind, ReportTarget } from '../../report/targets.js';
import { InputError } from '../../utils/errors.js';
import { outsideText } from '../../shared/outside-text.js';
import { EXIT, worstExit, type CliIo } from '../io.js';

type ReportFlags = Partial<Record<ReportKind, string>> & { csvRaw?: boolean; strict?: boolean };

/** `imgjob report <results...>`: HTML, JUnit, CSV, JSON Lines and Parquet reports of jobs, also while they run. */
export function addReportCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): Command {
  return program
    .command('report')
    .description(
      'write reports of jobs: HTML (self-contained), JUnit XML, CSV, JSON Lines, Parquet (works while a job runs)',
    )
    .argument('<results...>', 'results files written by imgjob run')
    .option('--html <file>', 'one self-contained HTML page per report (- for stdout)')
    .option(
      '--junit <file>',
      'JUnit XML: a test suite per job, a test case per store (- for stdout)',
    )
    .option('--csv <file>', 'CSV: one row per image, RFC 4180 (- for stdout)')
    .option(
      '--csv-raw',
      "with --csv: every value exactly as recorded; by default a cell that starts like a formula (= + - @) gets a ' in front and control characters are shown escaped",
    )
    .option(
      '--jsonl <file>',
      'JSON Lines: one object per image, the columns of --parquet (- for stdout)',
    )
    .option(
      '--parquet <file>',
      'Parquet: one row per image (job_id, store_id, store_status, image_index, url, status, width, height, perimeter, type, bytes, error_code, error, gpu_ms, download_ms), for DuckDB, pandas, Spark',
    )
    .option('--strict', "exit with the job's code, as status does (1 for a failed job)")
    .addHelpText(
      'after',
      `
Exit codes: 0 every report asked for was written, whatever the jobs' state · 2 bad file or usage.
With --strict, as \`status\`: 0 completed · 1 failed · 3 still ongoing.

Examples:
  imgjob report job.results.json --html report.html --junit junit.xml
  imgjob report job.results.json --csv - | head
  imgjob report job.results.json --parquet images.parquet
  duckdb -c "select status, count(*), sum(perimeter) from 'images.parquet' group by all"`,
    )
    .action(async (paths: string[], flags: ReportFlags) => {
      setExit(await reportCommand(paths, flags, io));
    });
}

async function reportCommand(paths: string[], flags: ReportFlags, io: CliIo): Promise<number> {
  // Loaded on use: other commands start without the report writers.
  const [{ checkTargets, REPORT_KINDS }, { writeReports }, { ResultsStream }] = await Promise.all([
    import('../../report/targets.js'),
    import('../../report/write.js'),
    import('../../results/results-stream.js'),
  ]);
  const targets = REPORT_KINDS.flatMap((kind): ReportTarget[] => {
    const path = flags[kind];
    return path === undefined ? [] : [{ kind, path }];
  });
  if (targets.length === 0) {
    const options = REPORT_KINDS.map((kind) => `--${kind}`).join(', ');
    throw new InputError('E_USAGE', `report: give at least one of ${options}`);
  }
  checkTargets(targets, 'report');
  if (io.stdout.isTTY && targets.some((t) => t.kind === 'parquet' && t.path === '-')) {
    throw new InputError(
      'E_USAGE',
      'report: --parquet - would write binary data to the terminal; give a file, or redirect stdout',
    );
  }
  // Each file is read a store at a time, once per report: a job of ten
  // million images is never whole in memory (but for --html, which embeds it).
  const jobs: ResultsStream[] = [];
  try {
    for (const path of paths) jobs.push(await ResultsStream.open(path));
    const written = await writeReports(targets, jobs, io.stdout, {
      csvRaw: flags.csvRaw === true,
    });
    // Every report read the stores through: each head is the replayed one.
    const heads = jobs.map((job) => job.head);
    for (const head of heads) {
      if (head.status === 'ongoing')
        io.stderr.write(
          `imgjob: job ${outsideText(head.job_id)} is still ongoing; the reports show it as of now\n`,
        );
    }
    for (const path of written) io.stderr.write(writtenLine(path));
    // Writing a report of a failed job succeeded: a `set -e` script goes on to upload it.
    return flags.strict ? worstExit(heads.map((head) => head.status)) : EXIT.completed;
  } finally {
    for (const job of jobs) await job.close();
  }
}

/** What `report` says for each file written (`run --report` logs the same words). */
function writtenLine(path: string): string {
  return `imgjob: wrote ${path}\n`;
}
