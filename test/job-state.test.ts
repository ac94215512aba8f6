import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { JobState, type JournalEntry } from '../src/results/job-state.js';
import { loadResults } from '../src/results/reader.js';
import { summaryOf } from '../src/results/results-stream.js';
import { ResultsWriter } from '../src/results/writer.js';
import type { ResultsDocument } from '../src/types.js';
import { doneImage, jobInputOfGrid, resultOptions } from './helpers/job-input.js';
import { journalWritten } from './helpers/journal.js';

const OPTIONS = resultOptions();

describe('JobState.subscribe', () => {
  it('delivers every change to every listener, in order, until each unsubscribes', () => {
    const state = JobState.create(jobInputOfGrid(2, 2), 'job-s', OPTIONS, new Date(0));
    const first: JournalEntry[] = [];
    const second: JournalEntry[] = [];
    const stopFirst = state.subscribe((entry) => first.push(entry));
    const stopSecond = state.subscribe((entry) => second.push(entry));

    state.setStoreStatus(0, 'ongoing');
    state.recordImage(0, 0, doneImage('http://h/0/0'));
    state.recordImage(0, 1, { url: 'http://h/0/1', status: 'skipped' });
    const expected: JournalEntry[] = [
      { t: 'store', s: 0, status: 'ongoing' },
      { t: 'image', s: 0, i: 0, r: doneImage('http://h/0/0') },
      { t: 'image', s: 0, i: 1, r: { url: 'http://h/0/1', status: 'skipped' } },
    ];
    expect(first).toEqual(expected);
    expect(second).toEqual(expected);

    stopFirst();
    state.setStoreStatus(0, 'completed');
    expect(first).toHaveLength(3);
    expect(second.at(-1)).toEqual({ t: 'store', s: 0, status: 'completed' });

    stopSecond();
    stopSecond();
    state.setStoreStatus(1, 'ongoing');
    expect(second).toHaveLength(4);
  });

  it('keeps one listener when the same function subscribes twice and unsubscribes once', () => {
    const state = JobState.create(jobInputOfGrid(1, 1), 'job-t', OPTIONS, new Date(0));
    const seen: JournalEntry[] = [];
    const listener = (entry: JournalEntry): number => seen.push(entry);
    state.subscribe(listener);
    const stop = state.subscribe(listener);
    stop();
    state.setStoreStatus(0, 'ongoing');
    expect(seen).toHaveLength(1);
  });

  it('lets the results writer journal while another listener follows the same job', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'imgjob-subscribe-')), 'job.results.json');
    const state = JobState.create(jobInputOfGrid(1, 2), 'job-u', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    const seen: JournalEntry[] = [];
    const stop = state.subscribe((entry) => seen.push(entry));

    state.setStoreStatus(0, 'ongoing');
    state.recordImage(0, 0, doneImage('http://h/0/0'));
    expect(seen.map((entry) => entry.t)).toEqual(['store', 'image']);
    // The writer kept its own subscription: the journal has both changes.
    await journalWritten();
    const live = await loadResults(path);
    expect(live.counts).toMatchObject({ done: 1, pending: 1 });
    stop();
    await writer.close(false);
  });
});

describe('JobState.summary', () => {
  it('counts each store as the whole document does, without holding its images', () => {
    const state = JobState.create(jobInputOfGrid(3, 3), 'job-m', OPTIONS, new Date(0));
    state.setStoreStatus(0, 'ongoing');
    state.recordImage(0, 0, doneImage('http://h/0/0'));
    state.recordImage(0, 1, doneImage('http://h/0/1'));
    state.setStoreStatus(1, 'ongoing');
    state.recordImage(1, 0, doneImage('http://h/1/0'));
    state.recordImage(1, 1, {
      url: 'http://h/1/1',
      status: 'failed',
      error: 'HTTP 404',
      code: 'HTTP_404',
      attempts: 1,
    });
    state.skipStore(1);
    state.setStoreStatus(1, 'failed', 'image 1: HTTP 404');

    const { updated_at: _summaryTime, ...summary } = state.summary({ interrupted: true });
    const { updated_at: _documentTime, ...whole } = summaryOf(
      state.toDocument({ interrupted: true }),
    );
    expect(summary).toEqual(whole);
    expect(summary.stores.map(({ done, images }) => `${done}/${images}`)).toEqual([
      '2/3',
      '1/3',
      '0/3',
    ]);
    expect(summary.status).toBe('ongoing');
    expect(summary.interrupted).toBe(true);
  });
});

describe('JobState: values past a narrow column', () => {
  it('keeps an image whose counts do not fit its columns whole, and spells it as it came', () => {
    // Over 5,000 images: the file is spelled from the columns, not from objects.
    const state = JobState.create(jobInputOfGrid(2, 2_600), 'job-w', OPTIONS, new Date(0));
    const images = [
      { ...doneImage('http://h/0/0'), width: 65_535, height: 1, perimeter: 131_072 },
      { ...doneImage('http://h/0/1'), width: 70_000, height: 2, perimeter: 140_004 },
      { ...doneImage('http://h/0/2'), attempts: 256, gpu_ms: 65_536, download_ms: 90_000 },
      { ...doneImage('http://h/0/3'), bytes: 4_000_000_000 },
    ];
    images.forEach((image, index) => {
      state.recordImage(0, index, image);
    });
    expect(state.toDocument().stores[0]?.images.slice(0, 4)).toEqual(images);
    const text = Buffer.concat([...state.snapshot().pieces()]).toString();
    const written = JSON.parse(text) as ResultsDocument;
    expect(written.stores[0]?.images.slice(0, 4)).toEqual(images);
    expect(state.bytesDone).toBe(images.reduce((sum, image) => sum + image.bytes, 0));
  });
});
