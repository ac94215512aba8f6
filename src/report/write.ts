/**
 * Writing the reports: each file replaced atomically (a CI job never
 * uploads half a report), `-` to stdout, streamed either way.
 */
import { FileReplacement } from '../utils/atomic-file.js';
import { InputError } from '../utils/errors.js';
import { csvReport } from './csv.js';
import { htmlReport } from './html.js';
import { jsonlReport } from './jsonl.js';
import { junitReport } from './junit.js';
import { wholeDocument, type ReportJob } from './report-job.js';
import type { ReportKind, ReportTarget } from './targets.js';

/** How the reports are written. */
export type ReportOptions = {
  /** The CSV's values exactly as recorded (`--csv-raw`). @default false */
  readonly csvRaw?: boolean | undefined;
};

/** Most images an HTML report embeds: a million are ~170 MB of JSON in the page already. */
export const HTML_MAX_IMAGES = 1_000_000;

/**
 * A report's pieces. The data reports and JUnit read each job a store at a
 * time; the HTML report embeds whole documents.
 */
export async function* reportPieces(
  kind: ReportKind,
  jobs: readonly ReportJob[],
  options: ReportOptions = {},
): AsyncGenerator<string | Uint8Array> {
  if (kind === 'html') {
    const images = jobs.reduce((sum, job) => sum + job.head.counts.images, 0);
    if (images > HTML_MAX_IMAGES)
      throw new InputError(
        'E_USAGE',
        `the HTML report embeds every image, and ${images} are more than a browser opens (at most ${HTML_MAX_IMAGES}); write --parquet or --jsonl instead`,
      );
    const documents = [];
    for (const job of jobs) documents.push(await wholeDocument(job));
    yield htmlReport(documents);
  } else if (kind === 'junit') yield* junitReport(jobs);
  else if (kind === 'jsonl') yield* jsonlReport(jobs);
  else if (kind === 'parquet') {
    // Loaded on use: the Parquet writer is most of the reports' code (~110 KB).
    const { parquetReport } = await import('./parquet.js');
    yield* parquetReport(jobs);
  } else yield* csvReport(jobs, { raw: options.csvRaw });
}

/** Bytes gathered before one write: a write per row would cost more than the rows. */
const WRITE_BYTES = 1 << 20;

/**
 * Writes every target; returns the paths written (not stdout).
 * @throws {InputError} `E_USAGE` when a file cannot be written.
 */
export async function writeReports(
  targets: readonly ReportTarget[],
  jobs: readonly ReportJob[],
  stdout: NodeJS.WritableStream,
  options: ReportOptions = {},
): Promise<string[]> {
  const written: string[] = [];
  for (const target of targets) {
    const pieces = reportPieces(target.kind, jobs, options);
    if (target.path === '-') {
      // A pipe is slower than the rows: wait for it, or the whole report
      // piles up in memory; a reader gone (`| head`) ends the report.
      for await (const piece of pieces) {
        if (stdout.write(piece)) continue;
        if (!(await drained(stdout))) break;
      }
      continue;
    }
    await writeFile(target, pieces);
    written.push(target.path);
  }
  return written;
}

/**
 * Streams the pieces into the file, replaced atomically at the end: a report
 * of a million rows is never whole in memory. Only a fault of the file is
 * blamed on it; a fault in building the report propagates as it is.
 */
async function writeFile(
  target: ReportTarget,
  pieces: AsyncIterable<string | Uint8Array>,
): Promise<void> {
  const file = await onFile(target, () => FileReplacement.open(target.path));
  const encoder = new TextEncoder();
  let batch: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const piece of pieces) {
      const bytes = typeof piece === 'string' ? encoder.encode(piece) : piece;
      batch.push(bytes);
      size += bytes.length;
      if (size < WRITE_BYTES) continue;
      const full = batch;
      batch = [];
      size = 0;
      await onFile(target, () => file.write(full));
    }
    await onFile(target, () => file.write(batch));
  } catch (error) {
    await file.abort();
    throw error;
  }
  await onFile(target, () => file.commit());
}

/** Whether `stream` drained (true) or went away (false) meanwhile. */
function drained(
  stream: NodeJS.WritableStream & { readonly destroyed?: boolean },
): Promise<boolean> {
  if (stream.destroyed === true) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean) => (): void => {
      stream.off('drain', onDrain);
      stream.off('close', onGone);
      stream.off('error', onGone);
      resolve(ok);
    };
    const onDrain = done(true);
    const onGone = done(false);
    stream.on('drain', onDrain);
    stream.on('close', onGone);
    stream.on('error', onGone);
  });
}

async function onFile<T>(target: ReportTarget, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code ??
      (error instanceof Error ? error.message : String(error));
    throw new InputError(
      'E_USAGE',
      `cannot write the ${target.kind} report to ${target.path}: ${reason}`,
      { cause: error },
    );
  }
}
