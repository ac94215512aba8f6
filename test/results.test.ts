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

import { beforeEach, describe, expect, it } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { loadResults } from '../src/results/reader.js';
import { journalPathOf, oldJournalPathOf } from '../src/results/paths.js';
import { imageText, SnapshotText } from '../src/results/snapshot.js';
import { ResultsWriter } from '../src/results/writer.js';
import type { ResultsDocument } from '../src/types.js';
import { doneImage, jobInputOfGrid, resultOptions } from './helpers/job-input.js';

const OPTIONS = resultOptions({ max_bytes: 10 });

const jobOf = jobInputOfGrid;

const done = doneImage;

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'imgjob-results-'));
  path = join(dir, 'job.results.json');
});

describe('the results file', () => {
  it('is whole from the start, journals each change within a turn, and loads with the journal replayed', async () => {
    const state = JobState.create(jobOf(2, 2), 'job-1', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    expect((JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument).counts.pending).toBe(4);

    state.recordImage(0, 0, done('http://h/0/0'));
    await nextTurn();
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

  it('journals a done image compactly and replays it whole; a line that fits no image ends the replay', async () => {
    const state = JobState.create(jobOf(1, 3), 'job-6', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    state.recordImage(0, 0, done('http://h/0/0'));
    await nextTurn();
    const line = readFileSync(journalPathOf(path), 'utf8');
    expect(line).not.toContain('http://h/0/0');
    expect(JSON.parse(line)).toMatchObject({ t: 'done', s: 0, i: 0 });
    appendFileSync(journalPathOf(path), '{"t":"done","s":0,"i":99,"w":1,"h":1}\n');
    appendFileSync(journalPathOf(path), '{"t":"store","s":0,"status":"failed","error":"late"}\n');

    const loaded = await loadResults(path);
    expect(loaded.stores[0]?.images[0]).toEqual(done('http://h/0/0'));
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
      await nextTurn();
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
    await nextTurn();
    // As a kill leaves it: old snapshot, the rotated journal, then newer lines.
    renameSync(journalPathOf(path), oldJournalPathOf(path));
    state.recordImage(0, 1, done('http://h/0/1'));
    await nextTurn();
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

describe('the snapshot text of a big job', () => {
  it('is the document, snapshot after snapshot, though only what changed is serialized again', () => {
    const state = JobState.create(jobOf(60, 100), 'job-7', OPTIONS, new Date(0));
    const text = new SnapshotText();
    state.onChange = (entry) => {
      text.changed(entry);
    };
    const check = (): void => {
      const document = state.toDocument();
      const parsed = JSON.parse(Buffer.concat(text.chunks(document)).toString('utf8')) as unknown;
      expect(parsed).toEqual(JSON.parse(JSON.stringify(document)));
    };
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

  it('writes pending and done images as JSON.stringify would', () => {
    const image = { ...done('http://h/"quoted"/\u00e9'), type: 'svg+xml' };
    expect(imageText(image)).toBe(JSON.stringify(image));
    const pending = { url: 'http://h/\\x', status: 'pending' } as const;
    expect(imageText(pending)).toBe(JSON.stringify(pending));
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
