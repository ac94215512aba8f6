import { describe, expect, it } from 'vitest';

import { renderProgress } from '../src/cli/progress.js';
import { cutMiddle, formatDuration, renderStoreTable, renderSummary } from '../src/cli/render.js';
import type { ImageResult, ResultsDocument, StoreStatus } from '../src/types.js';

describe('formatDuration', () => {
  it.each([
    [0.04, '0.0s'],
    [4.21, '4.2s'],
    [9.96, '10s'],
    [37.2, '37s'],
    [59.6, '1m00s'],
    [119.6, '2m00s'],
    [185, '3m05s'],
    [3599.7, '1h00m'],
    [7620, '2h07m'],
  ])('formats %s s as %s, never a 60 in a place that carries', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});

describe('the store table and summary', () => {
  const image = (status: 'done' | 'pending'): ImageResult =>
    status === 'done'
      ? {
          url: 'http://127.0.0.1/a.png',
          status,
          width: 1,
          height: 1,
          perimeter: 4,
          type: 'png',
          bytes: 10,
          attempts: 1,
          gpu_ms: 0,
          download_ms: 1,
        }
      : { url: 'http://127.0.0.1/b.png', status };
  const documentOf = (
    stores: { id: string; status: StoreStatus }[],
    extra: Partial<ResultsDocument> = {},
  ): ResultsDocument => ({
    schema_version: 1,
    tool: 'imgjob',
    job_id: 'j1',
    status: 'ongoing',
    manifest_digest: 'x',
    manifest_source: 'm.json',
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:01.000Z',
    options: { gpu_delay: '0', seed: null, header_only: false, max_bytes: 1, store_master: null },
    counts: {
      stores: stores.length,
      images: stores.length,
      done: 0,
      failed: 0,
      skipped: 0,
      pending: 0,
    },
    stores: stores.map(({ id, status }) => ({
      store_id: id,
      status,
      images: [image(status === 'completed' ? 'done' : 'pending')],
    })),
    ...extra,
  });

  it('tells store counts in one order: completed, failed, ongoing, pending', () => {
    const statuses: StoreStatus[] = ['pending', 'ongoing', 'failed', 'completed', 'pending'];
    const document = documentOf(statuses.map((status, n) => ({ id: `S${n}`, status })));
    expect(renderSummary(document)).toMatch(/\(1 completed, 1 failed, 1 ongoing, 2 pending\)$/);
  });

  it('calls a store cut off by a signal interrupted, in the rows and the summary', () => {
    const document = documentOf(
      [
        { id: 'S1', status: 'ongoing' },
        { id: 'S2', status: 'pending' },
      ],
      { interrupted: true },
    );
    expect(renderSummary(document)).toMatch(/\(1 interrupted, 1 pending\)$/);
    expect(renderStoreTable(document)).toMatch(/│ S1 +│ 0\/1 +│ interrupted │/);
  });

  it('keeps ids that differ at the end apart in a narrow table', () => {
    const ids = ['STORE-LONG-PREFIX-0001', 'STORE-LONG-PREFIX-0002', 'STORE-LONG-PREFIX-0003'];
    const table = renderStoreTable(documentOf(ids.map((id) => ({ id, status: 'completed' }))), {
      width: 30,
    });
    const shown = table
      .split('\n')
      .filter((line) => line.startsWith('│ S'))
      .map((line) => line.split('│')[1]?.trim());
    expect(shown).toHaveLength(3);
    expect(new Set(shown).size).toBe(3);
    for (const id of shown) expect(id).toMatch(/^ST.*…\d+$/);
    expect(cutMiddle('S1000000123', 7)).toBe('S10…123');
  });

  it('cuts the table to maxRows with one "… N more stores" line, and draws none for no store', () => {
    const document = documentOf(
      Array.from({ length: 10 }, (_, n) => ({ id: `S${n}`, status: 'pending' as const })),
    );
    const table = renderStoreTable(document, { maxRows: 3 });
    expect(table.split('\n').filter((line) => line.startsWith('│ S'))).toHaveLength(3);
    expect(table.split('\n').at(-1)).toBe('… 7 more stores');
    expect(renderStoreTable(documentOf([]))).toBe('');
  });
});

describe('the progress line', () => {
  const figures = {
    stores: 30,
    storesFinished: 4,
    storesRunning: 4,
    images: 364,
    settled: 81,
    failed: 2,
    pending: 283,
    worked: 81,
    bytes: 1_500_000,
    seconds: 3,
  };
  it.each([
    [
      Infinity,
      'stores 4/30 (4 running) · images 81/364 · 2 failed · 27.0 img/s · 500.0 KB/s · ETA 10s',
    ],
    [77, 'stores 4/30 (4 running) · images 81/364 · 2 failed · 27.0 img/s · ETA 10s'],
    [62, 'stores 4/30 · images 81/364 · 2 failed · 27.0 img/s · ETA 10s'],
    [50, 'stores 4/30 · images 81/364 · 2 failed · ETA 10s'],
    [37, 'images 81/364 · 2 failed · ETA 10s'],
    [20, 'images 81/364'],
  ])('fits %s columns by dropping the least useful fields first', (width, line) => {
    const text = renderProgress(figures, width);
    expect(text).toBe(line);
    expect(text.length).toBeLessThanOrEqual(width);
  });
});
