/**
 * The CSV report: one row per image, RFC 4180 (CRLF line ends; a field with
 * a comma, quote, CR or LF is quoted, its quotes doubled). Values are kept
 * exactly as recorded, so the file reads back to the same data; `index`
 * counts from 1 within the store, as imgjob's error messages do.
 */
import type { ResultsDocument } from '../types.js';

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

/** The report as pieces (a big job is never one string). */
export function* csvReport(documents: readonly ResultsDocument[]): Generator<string> {
  yield line(CSV_COLUMNS);
  for (const document of documents) {
    for (const store of document.stores) {
      let index = 0;
      for (const image of store.images) {
        index++;
        const done = image.status === 'done' ? image : undefined;
        yield line([
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
          document.job_id,
        ]);
      }
    }
  }
}

function line(fields: readonly (string | number | undefined)[]): string {
  return `${fields.map(field).join(',')}\r\n`;
}

function field(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
