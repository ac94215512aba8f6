/**
 * The JSON Lines report: one object per image, the columns of the Parquet
 * report as keys (null where an image has no value), for `jq`, DuckDB,
 * pandas or a warehouse's loader. What JSON leaves raw (DEL, C1, bidi and
 * line separators) is escaped too (`\u009b`): the same data, and nothing a
 * terminal would obey when it is piped there.
 */
import { safeJson } from '../shared/outside-text.js';
import { IMAGE_COLUMNS, imagesOf } from './image-rows.js';
import type { ReportJob } from './report-job.js';

/** The report as pieces of about 64 KB (a big job is never one string). */
export async function* jsonlReport(jobs: readonly ReportJob[]): AsyncGenerator<string> {
  let piece = '';
  for await (const at of imagesOf(jobs)) {
    const row: Record<string, string | number | null> = {};
    for (const column of IMAGE_COLUMNS) row[column.name] = column.of(at);
    piece += `${safeJson(JSON.stringify(row))}\n`;
    if (piece.length >= 1 << 16) {
      yield piece;
      piece = '';
    }
  }
  if (piece !== '') yield piece;
}
