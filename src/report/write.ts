/**
 * Writing the reports: each file replaced atomically (a CI job never
 * uploads half a report), `-` to stdout.
 */
import { replaceFile } from '../utils/atomic-file.js';
import { InputError } from '../utils/errors.js';
import type { ResultsDocument } from '../types.js';
import { csvReport } from './csv.js';
import { htmlReport } from './html.js';
import { junitReport } from './junit.js';
import type { ReportKind, ReportTarget } from './targets.js';

/** How the reports are written. */
export type ReportOptions = {
  /** The CSV's values exactly as recorded (`--csv-raw`). @default false */
  readonly csvRaw?: boolean | undefined;
};

export function reportPieces(
  kind: ReportKind,
  documents: readonly ResultsDocument[],
  options: ReportOptions = {},
): Iterable<string> {
  if (kind === 'html') return [htmlReport(documents)];
  if (kind === 'junit') return junitReport(documents);
  return csvReport(documents, { raw: options.csvRaw });
}

/**
 * Writes every target; returns the paths written (not stdout).
 * @throws {InputError} `E_USAGE` when a file cannot be written.
 */
export async function writeReports(
  targets: readonly ReportTarget[],
  documents: readonly ResultsDocument[],
  stdout: NodeJS.WritableStream,
  options: ReportOptions = {},
): Promise<string[]> {
  const written: string[] = [];
  for (const target of targets) {
    const pieces = reportPieces(target.kind, documents, options);
    if (target.path === '-') {
      for (const piece of pieces) stdout.write(piece);
      continue;
    }
    // Built before the write, so that a fault in building is not blamed on the file.
    const encoder = new TextEncoder();
    const bytes = [...pieces].map((piece) => encoder.encode(piece));
    try {
      await replaceFile(target.path, bytes);
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
    written.push(target.path);
  }
  return written;
}
