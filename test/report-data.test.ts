/**
 * The data reports, `report --parquet` and `--jsonl`: read back by DuckDB (a
 * reader other than the writer), one row per image with the row count,
 * perimeter sum and failures of the results file, and the same columns and
 * values in both forms.
 *
 * @module-tag e2e
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parquetReport, ROW_GROUP_ROWS } from '../src/report/parquet.js';
import { reportJobOf } from '../src/report/report-job.js';
import { loadResults } from '../src/results/reader.js';
import type { ImageResult, ResultsDocument } from '../src/types.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { runJobHere, runMain } from './helpers/main.js';
import { ptyIt, runOnPty } from './helpers/pty.js';

const dir = mkdtempSync(join(tmpdir(), 'imgjob-report-data-'));
let server: FaultServer;
let duck: DuckDBConnection;
/** The results file of the first test's job. */
let results = '';

beforeAll(async () => {
  server = await startFaultServer();
  duck = await (await DuckDBInstance.create(':memory:')).connect();
});
afterAll(async () => {
  duck.closeSync();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

type Row = Record<string, string | number | null>;

/** DuckDB's answer as plain rows (its BIGINTs as numbers: these fit). */
async function query(sql: string): Promise<Row[]> {
  const reader = await duck.runAndReadAll(sql);
  return reader
    .getRowObjectsJson()
    .map((row) =>
      Object.fromEntries(
        Object.entries(row).map(([key, value]) => [
          key,
          typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value,
        ]),
      ),
    ) as Row[];
}

const sumPerimeters = (document: ResultsDocument): number =>
  document.stores
    .flatMap((store) => store.images)
    .reduce((sum, image) => sum + (image.status === 'done' ? image.perimeter : 0), 0);

describe('imgjob report --parquet --jsonl', () => {
  it('writes one row per image that DuckDB reads back, the same in both forms', async () => {
    const visits = [
      { store_id: 'A', image_url: ['/img/image.png', '/img/image.gif', '/img/baseline.jpg'] },
      { store_id: 'B', image_url: ['/img/image.bmp', '/status/404', '/img/image.png'] },
      { store_id: 'C,"odd"', image_url: ['/img/image.webp'] },
    ].map((visit) => ({ ...visit, image_url: visit.image_url.map((path) => server.url(path)) }));
    const manifest = join(dir, 'job.json');
    writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
    results = join(dir, 'job.results.json');
    // The job, the reports and their output through main() in this process: what is checked
    // is what they write; the terminal's refusal below needs a real one.
    await runJobHere(['run', manifest, '-o', results, '--gpu-delay', '0', '--retries', '0']);
    const document = await loadResults(results);
    expect(document.counts).toMatchObject({ images: 7, failed: 1 });

    const parquet = join(dir, 'job.parquet');
    const jsonl = join(dir, 'job.jsonl');
    const report = await runMain(['report', results, '--parquet', parquet, '--jsonl', jsonl]);
    expect(report.code, report.stderr).toBe(0);

    const [totals] = await query(
      `select count(*) as n, sum(perimeter) as perimeter, count(error_code) as failed from '${parquet}'`,
    );
    expect(totals).toEqual({ n: 7, perimeter: sumPerimeters(document), failed: 1 });

    const rows = await query(`select * from '${parquet}' order by store_id, image_index`);
    expect(rows.find((row) => row.status === 'failed')).toMatchObject({
      job_id: document.job_id,
      store_id: 'B',
      store_status: 'failed',
      image_index: 2,
      url: server.url('/status/404'),
      width: null,
      perimeter: null,
      error_code: 'E_HTTP_STATUS',
      error: expect.stringContaining('404') as string,
      gpu_ms: null,
    });
    expect(rows.find((row) => row.status === 'skipped')).toMatchObject({ store_id: 'B' });
    expect(rows.find((row) => row.store_id === 'C,"odd"')).toMatchObject({ type: 'webp' });

    // JSON Lines: the same columns, in the same order, with the same values.
    const lines = readFileSync(jsonl, 'utf8').trimEnd().split('\n');
    const fromJsonl = lines.map((line) => JSON.parse(line) as Row);
    expect(Object.keys(fromJsonl[0] ?? {})).toEqual(Object.keys(rows[0] ?? {}));
    const byPlace = (row: Row): string => `${String(row.store_id)}#${String(row.image_index)}`;
    expect(fromJsonl.sort((a, b) => byPlace(a).localeCompare(byPlace(b)))).toEqual(
      rows.sort((a, b) => byPlace(a).localeCompare(byPlace(b))),
    );
    const [jsonlTotals] = await query(
      `select count(*) as n, sum(perimeter) as perimeter from read_json_auto('${jsonl}')`,
    );
    expect(jsonlTotals).toEqual({ n: 7, perimeter: sumPerimeters(document) });

    // `-` is standard output: one object per line.
    const piped = await runMain(['report', results, '--jsonl', '-']);
    expect(piped.stdout.trimEnd().split('\n')).toEqual(
      readFileSync(jsonl, 'utf8').trimEnd().split('\n'),
    );
  });

  ptyIt('refuses to write Parquet to a terminal', async () => {
    expect(results).not.toBe('');
    const onTerminal = await runOnPty(dir, ['report', results, '--parquet', '-'], {
      cols: 80,
      rows: 24,
    }).result;
    expect(onTerminal.code).toBe(2);
    expect(onTerminal.output).toContain('would write binary data to the terminal');
  });

  it('writes a job of several row groups that reads back whole', async () => {
    const images = ROW_GROUP_ROWS * 2 + 7;
    const document = syntheticDocument(images);
    const path = join(dir, 'big.parquet');
    const pieces: Uint8Array[] = [];
    for await (const piece of parquetReport([reportJobOf(document)])) pieces.push(piece);
    writeFileSync(path, Buffer.concat(pieces));
    const [totals] = await query(
      `select count(*) as n, sum(perimeter) as perimeter, count(distinct store_id) as stores,
              max(image_index) as last from '${path}'`,
    );
    expect(totals).toEqual({
      n: images,
      perimeter: sumPerimeters(document),
      stores: document.stores.length,
      last: 100,
    });
    const [{ groups } = {}] = await query(
      `select count(distinct row_group_id) as groups from parquet_metadata('${path}')`,
    );
    expect(groups).toBe(3);
  });
});

/** A finished job of `images` images, 100 per store, every 50th failed. */
function syntheticDocument(images: number): ResultsDocument {
  const stores = [];
  for (let s = 0; s * 100 < images; s++) {
    const list: ImageResult[] = [];
    for (let i = 0; i < Math.min(100, images - s * 100); i++) {
      const url = `http://127.0.0.1:9/img/${s}/${i}.png`;
      // Plain literals: two literals spread into one cost ~0.6 s of CPU over 50,000 images.
      list.push(
        i % 50 === 49
          ? { url, status: 'failed', error: 'HTTP 404 Not Found', code: 'E_HTTP_STATUS' }
          : {
              url,
              status: 'done',
              width: i + 1,
              height: s + 1,
              type: 'png',
              bytes: 100,
              perimeter: 2 * (i + 1 + s + 1),
              attempts: 1,
              gpu_ms: 0,
              download_ms: 1,
            },
      );
    }
    stores.push({ store_id: `S${s}`, status: 'failed' as const, images: list });
  }
  return { job_id: 'j', stores } as unknown as ResultsDocument;
}
