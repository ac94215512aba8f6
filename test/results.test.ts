import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeEach, describe, expect, it, vi } from 'vitest';

import { JobState, type JournalEntry } from '../src/results/job-state.js';
import { encodeJournalEntry, JournalBuffer, parseJournal } from '../src/results/journal.js';
import { loadResults, readResultsHeader } from '../src/results/reader.js';
import { journalPathOf, oldJournalPathOf } from '../src/results/paths.js';
import { StoreTextCache } from '../src/results/snapshot.js';
import { JOURNAL_FLUSH_MS, ResultsWriter } from '../src/results/writer.js';
import type { ImageResult, ResultsDocument } from '../src/types.js';
import { doneImage, jobInputOf, jobInputOfGrid, resultOptions } from './helpers/job-input.js';
import { journalWritten } from './helpers/journal.js';

const OPTIONS = resultOptions({ max_bytes: 10 });

const jobOf = jobInputOfGrid;

const done = doneImage;

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgjob-results-'));
  path = join(dir, 'job.results.json');
});

describe('the results file', () => {
  it('is whole from the start, journals each change within milliseconds, and loads with the journal replayed', async () => {
    const state = JobState.create(jobOf(2, 2), 'job-1', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    expect((JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument).counts.pending).toBe(4);

    state.recordImage(0, 0, done('http://h/0/0'));
    await journalWritten();
    expect(readFileSync(journalPathOf(path), 'utf8').trim().split('\n')).toHaveLength(1);
    // The snapshot on disk is older; a reader still sees the change.
    expect((JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument).counts.done).toBe(0);
    const live = await loadResults(path);
    expect(live.counts).toMatchObject({ done: 1, pending: 3 });
    expect(live.writer?.pid).toBe(process.pid);

    await writer.close(false);
    const final = JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
    expect(final.counts.done).toBe(1);
    expect(final.finished_at).toBeDefined();
    expect(final.writer).toBeUndefined();
    expect(existsSync(journalPathOf(path))).toBe(false);
  });

  it('writes the lines of a few milliseconds in one go, and what is left when it closes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const state = JobState.create(jobOf(1, 4), 'job-b', OPTIONS, new Date(0));
      const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
      await writer.open();
      for (let image = 0; image < 3; image++) {
        state.recordImage(0, image, done(`http://h/0/${image}`));
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(writer.stats.journalWrites).toBe(0);
      vi.advanceTimersByTime(JOURNAL_FLUSH_MS);
      expect(writer.stats.journalWrites).toBe(1);
      expect(readFileSync(journalPathOf(path), 'utf8').trim().split('\n')).toHaveLength(3);
      state.recordImage(0, 3, done('http://h/0/3'));
      await writer.close(false);
      expect(writer.stats.journalWrites).toBe(2);
      expect((JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument).counts.done).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('journals a done image compactly and replays it whole; a line that fits no image ends the replay', async () => {
    const state = JobState.create(jobOf(1, 3), 'job-6', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    state.recordImage(0, 0, done('http://h/0/0'));
    await journalWritten();
    const line = readFileSync(journalPathOf(path), 'utf8');
    expect(line).not.toContain('http://h/0/0');
    expect(line).toBe('[0,0,2,3,"png",1,1,0,0]\n');
    // The object form earlier versions wrote still replays.
    appendFileSync(
      journalPathOf(path),
      '{"t":"done","s":0,"i":1,"w":2,"h":3,"ty":"png","b":1,"a":1,"g":0,"d":0}\n',
    );
    appendFileSync(journalPathOf(path), '[0,99,1,1,"png",1,1,0,0]\n');
    appendFileSync(journalPathOf(path), '{"t":"store","s":0,"status":"failed","error":"late"}\n');

    const loaded = await loadResults(path);
    expect(loaded.stores[0]?.images[0]).toEqual(done('http://h/0/0'));
    expect(loaded.stores[0]?.images[1]).toEqual(done('http://h/0/1'));
    expect(loaded.stores[0]?.images[2]?.status).toBe('pending');
    expect(loaded.stores[0]?.status).toBe('pending');
    await writer.close(true);
  });

  it('replaces the snapshot in the background and drops the rotated journal once it is in place', async () => {
    const state = JobState.create(jobOf(1, 3), 'job-2', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, {
      intervalMs: 0,
      maxShare: Infinity,
    });
    await writer.open();
    state.recordImage(0, 0, done('http://h/0/0'));
    state.recordImage(0, 1, done('http://h/0/1'));
    // Every reading in between is whole and never goes backwards.
    let seen = 0;
    for (let turn = 0; turn < 20; turn++) {
      const { counts } = await loadResults(path);
      expect(counts.done).toBeGreaterThanOrEqual(seen);
      seen = counts.done;
      await journalWritten();
    }
    expect(seen).toBe(2);
    await writer.close(false);
    expect(existsSync(oldJournalPathOf(path))).toBe(false);
    expect(writer.stats.saves).toBeGreaterThanOrEqual(3);
  });

  it('after a crash mid-snapshot, replays the rotated journal before the current one', async () => {
    const state = JobState.create(jobOf(1, 2), 'job-3', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    state.recordImage(0, 0, {
      url: 'http://h/0/0',
      status: 'failed',
      error: 'x',
      code: 'E_HTTP_STATUS',
    });
    state.recordImage(0, 0, done('http://h/0/0'));
    await journalWritten();
    // As a kill leaves it: old snapshot, the rotated journal, then newer lines.
    renameSync(journalPathOf(path), oldJournalPathOf(path));
    state.recordImage(0, 1, done('http://h/0/1'));
    await journalWritten();
    appendFileSync(journalPathOf(path), '{"t":"image","s":0,"i":1,"r":{"url":"torn');

    const loaded = await loadResults(path);
    expect(loaded.stores[0]?.images.map((image) => image.status)).toEqual(['done', 'done']);
  });

  it('writes a big job compactly, store by store, as one valid document', async () => {
    const state = JobState.create(jobOf(60, 100), 'job-4', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state);
    await writer.open();
    state.recordImage(59, 99, done('http://h/59/99'));
    await writer.close(true);
    const text = readFileSync(path, 'utf8');
    expect(text.split('\n').length).toBeLessThan(100);
    const document = JSON.parse(text) as ResultsDocument;
    expect(document.stores).toHaveLength(60);
    expect(document.stores[59]?.images[99]?.status).toBe('done');
    expect(document.interrupted).toBe(true);
  });

  it('gives the header of a running job, small or big, from the head of the file alone', async () => {
    for (const [stores, images] of [
      [2, 2],
      [60, 100],
    ] as const) {
      const state = JobState.create(jobOf(stores, images), 'job-h', OPTIONS, new Date(0));
      const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
      await writer.open();
      const { stores: _stores, ...expected } = JSON.parse(
        readFileSync(path, 'utf8'),
      ) as ResultsDocument;
      const header = readResultsHeader(path);
      expect(header).toEqual(expected);
      expect(header?.writer?.pid).toBe(process.pid);
      await writer.close(true);
    }
    // A header past the first read (a long error list) takes more reads.
    const errors = Array.from({ length: 3000 }, (_, i) => ({
      store_id: `S${i}`,
      error: 'x'.repeat(40),
    }));
    writeFileSync(path, JSON.stringify({ tool: 'imgjob', error: errors, stores: [] }));
    expect(readResultsHeader(path)).toEqual({ tool: 'imgjob', error: errors });
    writeFileSync(path, '{"tool":"imgjob",');
    expect(readResultsHeader(path)).toBeUndefined();
    expect(readResultsHeader(join(dir, 'missing.json'))).toBeUndefined();
  });

  it('starts a fresh job without replaying journals another job left beside the file', async () => {
    writeFileSync(journalPathOf(path), '{"t":"store","s":0,"status":"failed","error":"old"}\n');
    writeFileSync(oldJournalPathOf(path), '{"t":"store","s":0,"status":"failed","error":"old"}\n');
    const writer = new ResultsWriter(
      path,
      JobState.create(jobOf(1, 1), 'job-5', OPTIONS, new Date(0)),
    );
    await writer.open();
    expect((await loadResults(path)).stores[0]?.status).toBe('pending');
    await writer.close(true);
  });
});

describe('the journal buffer', () => {
  it('spells a done line byte for byte as encodeJournalEntry does, and anything else through it', () => {
    const random = (max: number): number => Math.floor(Math.random() * max);
    const entries: JournalEntry[] = [];
    for (const value of [0, 1, 9, 10, 99, 100, 65_535, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
      entries.push({
        t: 'image',
        s: value,
        i: random(1000),
        r: { ...done('http://h/x'), width: value, bytes: value, download_ms: value },
      });
    }
    for (let n = 0; n < 500; n++) {
      entries.push({
        t: 'image',
        s: random(100_000),
        i: random(10_000),
        r: {
          ...done('http://h/x'),
          width: random(20_000),
          height: random(20_000),
          bytes: random(2 ** 40),
          attempts: 1 + random(5),
          gpu_ms: random(1000),
          download_ms: random(100_000),
          type: ['jpg', 'png', 'webp', 'svg', 'j2c'][random(5)] ?? 'jpg',
        },
      });
    }
    // Through JSON.stringify: a fraction, a quote in the type, other entries.
    entries.push({ t: 'image', s: 1, i: 2, r: { ...done('http://h/x'), download_ms: 1.5 } });
    entries.push({ t: 'image', s: 1, i: 3, r: { ...done('http://h/x'), type: 'x"y' } });
    entries.push({ t: 'image', s: 1, i: 4, r: { url: 'http://h/é', status: 'skipped' } });
    entries.push({ t: 'store', s: 1, status: 'failed', error: 'image 3 of 9: ünïcode' });
    const buffer = new JournalBuffer();
    for (const entry of entries) buffer.append(entry);
    expect(buffer.bytes.toString('utf8')).toBe(entries.map(encodeJournalEntry).join(''));
    expect(parseJournal(buffer.bytes.toString('utf8'))).toHaveLength(entries.length);
    buffer.clear();
    expect(buffer.length).toBe(0);
  });
});

/** The document as a big job's snapshot spells it (a store's images last), without line breaks. */
function compactText(document: ResultsDocument): string {
  const stores = document.stores.map(({ images, ...store }) => ({ ...store, images }));
  return JSON.stringify({ ...document, stores });
}

/**
 * Checks each snapshot's text against its document: byte for byte the
 * compact document, but for a line break per store. Ended stores' texts are
 * kept between snapshots, within a budget smaller than the job's text.
 */
function snapshotChecker(state: JobState): () => void {
  const kept = new StoreTextCache(256 << 10);
  return () => {
    const snapshot = state.snapshot();
    // Each piece is valid until the next is asked for: copied as it comes.
    const pieces: Buffer[] = [];
    for (const piece of snapshot.pieces(kept)) pieces.push(Buffer.from(piece));
    const written = Buffer.concat(pieces).toString('utf8');
    expectSameText(written.replaceAll('\n', ''), compactText(snapshot.toDocument()));
  };
}

/** Long texts compared where they first differ, so a failure shows where. */
function expectSameText(actual: string, expected: string): void {
  let at = 0;
  while (at < actual.length && actual[at] === expected[at]) at++;
  expect(actual.slice(Math.max(0, at - 80), at + 80)).toBe(
    expected.slice(Math.max(0, at - 80), at + 80),
  );
  expect(actual.length).toBe(expected.length);
}

describe('the snapshot text of a big job', () => {
  it('is the document, snapshot after snapshot, spelled from the columns', () => {
    const state = JobState.create(jobOf(60, 100), 'job-7', OPTIONS, new Date(0));
    const check = snapshotChecker(state);
    check();
    // Stores start, record in order (some between two snapshots), end, fail.
    for (let round = 0; round < 12; round++) {
      for (let store = round * 5; store < round * 5 + 8 && store < 60; store++) {
        if (state.storeStatus(store) === 'pending') state.setStoreStatus(store, 'ongoing');
        const first = state.firstPending(store);
        for (let image = first; image < Math.min(first + 37, 100); image++) {
          state.recordImage(store, image, done(`http://h/${store}/${image}`));
        }
        if (state.firstPending(store) === 100) state.setStoreStatus(store, 'completed');
      }
      if (round === 3) {
        state.recordImage(17, 99, {
          url: 'http://h/17/99',
          status: 'failed',
          error: 'HTTP 404 "Not Found"\n',
          code: 'E_HTTP_STATUS',
        });
        state.setStoreStatus(17, 'failed', 'image 100 failed');
      }
      // A change below what was already written (not in a normal run).
      if (round === 5) state.recordImage(2, 0, done('http://h/2/0'));
      check();
    }
    expect(state.counts.done).toBeGreaterThan(1000);
  });

  it('spells each image as JSON.stringify would, whatever its URL, values or earlier text', () => {
    const urls = [
      'http://h/plain.jpg',
      'http://h/"quoted"/\\back',
      'http://h/\u00e9t\u00e9/\u{1F600}.png',
      'http://h/%22x%22',
    ];
    const input = jobInputOf({
      A: Array.from({ length: 3000 }, (_, i) => `${urls[i % urls.length]}?${i}`),
      B: Array.from({ length: 3000 }, (_, i) => `${urls[(i + 1) % urls.length]}#${i}`),
    });
    const values = (url: string, i: number): ImageResult => ({
      ...done(url),
      width: i * 7,
      height: 2 ** 33 + i,
      perimeter: 2 * (i * 7 + 2 ** 33 + i),
      type: ['jpg', 'svg+xml', 'png'][i % 3] ?? 'jpg',
      download_ms: i % 5 === 0 ? i / 3 : i,
    });
    const first = JobState.create(input, 'job-u', OPTIONS, new Date(0));
    for (let i = 0; i < 700; i++)
      first.recordImage(0, i, values(`${urls[i % urls.length]}?${i}`, i));
    // Loaded back, as --resume does: some images are done in the first text.
    const state = JobState.fromDocument(
      JSON.parse(JSON.stringify(first.toDocument())) as ResultsDocument,
    );
    const check = snapshotChecker(state);
    check();
    for (const [store, from, to] of [
      [0, 700, 1500],
      [1, 0, 2000],
      [0, 1500, 3000],
      [1, 2000, 3000],
    ] as const) {
      const prefix = store === 0 ? '?' : '#';
      for (let i = from; i < to; i++) {
        const url = `${urls[(i + store) % urls.length]}${prefix}${i}`;
        state.recordImage(store, i, values(url, i));
      }
      check();
    }
  });
});

describe('the results file of a big job, snapshot after snapshot', () => {
  it('always holds the document as it was at its snapshot, from the text kept per store', async () => {
    const state = JobState.create(jobOf(60, 100), 'job-8', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 0, maxShare: Infinity });
    await writer.open();
    for (let store = 0; store < 60; store++) {
      state.setStoreStatus(store, 'ongoing');
      for (let image = 0; image < 100; image++) {
        state.recordImage(store, image, done(`http://h/${store}/${image}`));
        if (image % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 2));
      }
      state.setStoreStatus(
        store,
        store === 7 ? 'failed' : 'completed',
        store === 7 ? 'x' : undefined,
      );
      // Whatever snapshot is on disk is whole and fits the job so far.
      const bare = JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
      expect(bare.stores).toHaveLength(60);
      expect(bare.counts.done).toBe(
        bare.stores.flatMap((s) => s.images).filter((image) => image.status === 'done').length,
      );
    }
    await writer.close(false);
    expect(writer.stats.saves).toBeGreaterThan(5);
    const final = JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
    const expected = JSON.parse(JSON.stringify(state.toDocument())) as ResultsDocument;
    expect(final.stores).toEqual(expected.stores);
    expect(final).toMatchObject({
      status: 'failed',
      counts: expected.counts,
      error: expected.error,
    });
  });
});

describe('the kept text of an ended store', () => {
  it('is not used for a snapshot taken after the store changed, even when spelled after it', () => {
    const state = JobState.create(jobOf(60, 100), 'job-9', OPTIONS, new Date(0));
    for (let image = 0; image < 100; image++)
      state.recordImage(0, image, done(`http://h/0/${image}`));
    state.setStoreStatus(0, 'completed');
    const kept = new StoreTextCache();
    const before = state.snapshot();
    // Reopened between the snapshot and its spelling (as --retry-failed would).
    state.setStoreStatus(0, 'pending');
    state.recordImage(0, 5, { url: 'http://h/0/5', status: 'pending' });
    const textOf = (snapshot: ReturnType<JobState['snapshot']>): string => {
      const pieces: Buffer[] = [];
      for (const piece of snapshot.pieces(kept)) pieces.push(Buffer.from(piece));
      return Buffer.concat(pieces).toString('utf8');
    };
    expect(textOf(before).replaceAll('\n', '')).toBe(compactText(before.toDocument()));
    const after = state.snapshot();
    expect(textOf(after).replaceAll('\n', '')).toBe(compactText(after.toDocument()));
    expect(after.toDocument().stores[0]?.images[5]?.status).toBe('pending');
  });
});
