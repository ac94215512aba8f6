/**
 * The Parquet report: one row per image (the columns of `image-rows.ts`),
 * for DuckDB, pandas, Spark or a warehouse. Written by hyparquet-writer
 * (pure JS, 444 KB installed; DuckDB's native package is 70 MB: README,
 * docs/reports.md), a row group at a time: the columns of one group are all
 * that is held, and the file's bytes go out group by group.
 */
import { ByteWriter, ParquetWriter, type ColumnSource, type SchemaElement } from 'hyparquet-writer';

import { IMAGE_COLUMNS, imagesOf } from './image-rows.js';
import type { ReportJob } from './report-job.js';

/**
 * Rows per row group. hyparquet-writer holds a group encoded twice over
 * (values, pages): 100,000-row groups raised peak RSS by 270 MB at 200k
 * rows and were slower (GC); 25,000 took 120 MB. DuckDB reads a group per
 * thread, so a million rows are still 40 groups to share out.
 */
export const ROW_GROUP_ROWS = 25_000;

/** The file's bytes, a row group at a time. */
export async function* parquetReport(jobs: readonly ReportJob[]): AsyncGenerator<Uint8Array> {
  const out: Uint8Array[] = [];
  const bytes = new ByteWriter();
  // ParquetWriter calls flush after each row group: the bytes so far leave the buffer.
  Object.assign(bytes, {
    flush: () => {
      out.push(bytes.getBytes().slice());
      bytes.index = 0;
    },
  });
  const writer = new ParquetWriter({ writer: bytes, schema: SCHEMA, createdBy: 'imgjob' });
  let columns = IMAGE_COLUMNS.map((): (string | number | bigint | null)[] => []);
  const writeGroup = (): void => {
    const columnData: ColumnSource[] = IMAGE_COLUMNS.map((column, i) => ({
      name: column.name,
      data: columns[i] ?? [],
      ...(column.statistics === false ? { statistics: false } : {}),
    }));
    void writer.write({ columnData, rowGroupSize: ROW_GROUP_ROWS });
    columns = IMAGE_COLUMNS.map(() => []);
  };
  for await (const at of imagesOf(jobs)) {
    IMAGE_COLUMNS.forEach((column, i) => {
      const value = column.of(at);
      columns[i]?.push(column.type === 'INT64' && value !== null ? BigInt(value) : value);
    });
    if ((columns[0]?.length ?? 0) >= ROW_GROUP_ROWS) {
      writeGroup();
      yield* out.splice(0);
    }
  }
  if ((columns[0]?.length ?? 0) > 0) writeGroup();
  void writer.finish();
  out.push(bytes.getBytes().slice());
  yield* out.splice(0);
}

const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: IMAGE_COLUMNS.length },
  ...IMAGE_COLUMNS.map((column): SchemaElement => ({
    name: column.name,
    repetition_type: column.nullable ? 'OPTIONAL' : 'REQUIRED',
    ...(column.type === 'STRING'
      ? { type: 'BYTE_ARRAY', converted_type: 'UTF8' }
      : { type: column.type }),
  })),
];
