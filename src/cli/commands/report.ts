import type { Command } from 'commander';

import { loadResults } from '../../results/reader.js';
import type { ReportTarget } from '../../report/targets.js';
import { InputError } from '../../utils/errors.js';
import { outsideText } from '../../utils/outside-text.js';
import { EXIT, worstExit, type CliIo } from '../io.js';

type ReportFlags = {
  html?: string;
  junit?: string;
  csv?: string;
  csvRaw?: boolean;
  strict?: boolean;
};

/** `imgjob report <results...>`: HTML, JUnit and CSV reports of jobs, also while they run. */
export function addReportCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): Command {
  return program
    .command('report')
    .description(
      'write reports of jobs: HTML (self-contained), JUnit XML, CSV (works while a job runs)',
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
    .option('--strict', "exit with the job's code, as status does (1 for a failed job)")
    .addHelpText(
      'after',
      `
Exit codes: 0 every report asked for was written, whatever the jobs' state · 2 bad file or usage.
With --strict, as \`status\`: 0 completed · 1 failed · 3 still ongoing.

Examples:
  imgjob report job.results.json --html report.html --junit junit.xml
  imgjob report job.results.json --csv - | head`,
    )
    .action(async (paths: string[], flags: ReportFlags) => {
      setExit(await reportCommand(paths, flags, io));
    });
}

async function reportCommand(paths: string[], flags: ReportFlags, io: CliIo): Promise<number> {
  // Loaded on use: other commands start without the report writers.
  const [{ checkTargets }, { writeReports }] = await Promise.all([
    import('../../report/targets.js'),
    import('../../report/write.js'),
  ]);
  const targets: ReportTarget[] = [];
  if (flags.html !== undefined) targets.push({ kind: 'html', path: flags.html });
  if (flags.junit !== undefined) targets.push({ kind: 'junit', path: flags.junit });
  if (flags.csv !== undefined) targets.push({ kind: 'csv', path: flags.csv });
  if (targets.length === 0)
    throw new InputError('E_USAGE', 'report: give at least one of --html, --junit, --csv');
  checkTargets(targets, 'report');
  const documents = [];
  for (const path of paths) documents.push(await loadResults(path));
  const written = await writeReports(targets, documents, io.stdout, {
    csvRaw: flags.csvRaw === true,
  });
  for (const document of documents) {
    if (document.status === 'ongoing')
      io.stderr.write(
        `imgjob: job ${outsideText(document.job_id)} is still ongoing; the reports show it as of now\n`,
      );
  }
  for (const path of written) io.stderr.write(writtenLine(path));
  // Writing a report of a failed job succeeded: a `set -e` script goes on to upload it.
  return flags.strict ? worstExit(documents.map((document) => document.status)) : EXIT.completed;
}

/** What `report` says for each file written (`run --report` logs the same words). */
function writtenLine(path: string): string {
  return `imgjob: wrote ${path}\n`;
}
