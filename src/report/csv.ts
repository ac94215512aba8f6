/**
 * The CSV report: one row per image, RFC 4180 (CRLF line ends; a field with
 * a comma, quote, CR or LF is quoted, its quotes doubled); `index` counts
 * from 1 within the store, as imgjob's error messages do.
 *
 * Its text came from outside (store ids, URLs, an image server's error
 * text), and a spreadsheet runs a cell that starts like a formula
 * (`=HYPERLINK(…)`): such a cell gets a `'` in front, as OWASP advises, and
 * control characters are shown escaped. `raw` keeps every value exactly as
 * recorded, for programs that read the file back.
 */
import { outsideText } from '../shared/outside-text.js';
import type { ReportJob } from './report-job.js';

export type CsvOptions = {
  /** Values exactly as recorded: no `'` before formulas, controls not escaped. @default false */
  readonly raw?: boolean | undefined;
};

export const CSV_COLUMNS = [
  'store_id',
  'index',
  'url',
  'status',
  'width',
  'height',
  'perimeter',
  'bytes',
  'gpu_ms',
  'error',
  'job_id',
] as const;

/** The report as pieces of about 64 KB (a big job is never one string). */
export async function* csvReport(
  jobs: readonly ReportJob[],
  options: CsvOptions = {},
): AsyncGenerator<string> {
  const text = options.raw === true ? (value: string) => value : safeCell;
  const line = (fields: readonly (string | number | undefined)[]): string =>
    `${fields.map((value) => field(typeof value === 'string' ? text(value) : value)).join(',')}\r\n`;
  let piece = line(CSV_COLUMNS);
  for (const job of jobs) {
    for await (const store of job.stores()) {
      let index = 0;
      for (const image of store.images) {
        index++;
        const done = image.status === 'done' ? image : undefined;
        piece += line([
          store.store_id,
          index,
          image.url,
          image.status,
          done?.width,
          done?.height,
          done?.perimeter,
          done?.bytes,
          done?.gpu_ms,
          image.status === 'failed' ? image.error : undefined,
          job.head.job_id,
        ]);
        if (piece.length >= 1 << 16) {
          yield piece;
          piece = '';
        }
      }
    }
  }
  yield piece;
}

/** Starts a formula in Excel, LibreOffice or Google Sheets (OWASP's list). */
const FORMULA_START = /^[=+\-@\t\r]/;

function safeCell(value: string): string {
  return FORMULA_START.test(value) ? `'${outsideText(value)}` : outsideText(value);
}

function field(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
