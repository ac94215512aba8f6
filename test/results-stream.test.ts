import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { beforeEach, describe, expect, it } from 'vitest';

import type { CliIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { HTML_MAX_IMAGES, reportPieces } from '../src/report/write.js';
import { reportJobOf } from '../src/report/report-job.js';
import { JobState } from '../src/results/job-state.js';
import { loadResults } from '../src/results/reader.js';
import { journalPathOf, oldJournalPathOf } from '../src/results/paths.js';
import { ResultsStream } from '../src/results/results-stream.js';
import { ResultsWriter } from '../src/results/writer.js';
import type { ResultsDocument } from '../src/types.js';
import { doneImage, jobInputOfGrid, jobInputOfSizes, resultOptions } from './helpers/job-input.js';
import { journalWritten } from './helpers/journal.js';

const OPTIONS = resultOptions();

let path: string;
beforeEach(() => {
  path = join(mkdtempSync(join(tmpdir(), 'imgjob-stream-')), 'job.results.json');
});

/** A job of 6,000 images (one store a line on disk), its first snapshot written, then `changes` only journaled. */
async function journaledJob(
  changes: (state: JobState) => void,
): Promise<{ state: JobState; writer: ResultsWriter }> {
  const state = JobState.create(jobInputOfGrid(60, 100), 'job-big', OPTIONS, new Date(0));
  const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
  await writer.open();
  changes(state);
  await journalWritten();
  return { state, writer };
}

function failStore3(state: JobState): void {
  state.setStoreStatus(3, 'ongoing');
  state.recordImage(3, 0, doneImage('http://h/3/0'));
  state.recordImage(3, 1, {
    url: 'http://h/3/1',
    status: 'failed',
    error: 'HTTP 404',
    code: 'E_HTTP_STATUS',
  });
  state.setStoreStatus(3, 'failed', 'image 2 of 100: HTTP 404');
  state.recordImage(7, 5, doneImage('http://h/7/5'));
}

/** Without the one field that says when it was read. */
function comparable(document: Omit<ResultsDocument, 'stores'> & { stores?: unknown }): object {
  return { ...document, updated_at: 'now' };
}

describe('a results file read store by store', () => {
  it('gives the document the running job holds, its journal replayed, one store a line', async () => {
    const { state, writer } = await journaledJob(failStore3);
    // On disk: the head, a line per store, the end; the changes are in the journal only.
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(1 + 60 + 2);
    expect(readFileSync(journalPathOf(path), 'utf8').trim().split('\n')).toHaveLength(5);
    const expected = state.toDocument({ writer: { pid: process.pid, host: hostname() } });

    const stream = await ResultsStream.open(path);
    try {
      expect(comparable(await stream.document())).toEqual(comparable(expected));
      // A second pass (a report of two kinds) reads the same.
      const summary = await stream.summary();
      expect(summary.counts).toEqual({
        stores: 60,
        images: 6000,
        done: 2,
        failed: 1,
        skipped: 0,
        pending: 5997,
      });
      expect(summary.status).toBe('ongoing');
      expect(summary.stores[3]).toEqual({
        store_id: 'S3',
        status: 'failed',
        error: 'image 2 of 100: HTTP 404',
        images: 100,
        done: 1,
      });
      expect(summary.stores[7]).toMatchObject({ status: 'pending', images: 100, done: 1 });
    } finally {
      await stream.close();
    }
    expect(comparable(await loadResults(path))).toEqual(comparable(expected));
    await writer.close(true);
  });

  it('takes a job up again a store at a time, with its manifest’s URLs, and refuses another manifest’s stores', async () => {
    const { state, writer } = await journaledJob(failStore3);
    await writer.close(true);
    const expected = state.toDocument();
    const stream = await ResultsStream.open(path);
    try {
      const resumed = await JobState.fromStream(stream, jobInputOfGrid(60, 100));
      expect(comparable(resumed.toDocument())).toEqual(comparable(expected));
      expect(resumed.counts).toEqual(state.counts);
      expect(resumed.firstPending(3)).toBe(2);
      // Another job's stores: S59 holds 99 images there.
      const other = jobInputOfSizes([...Array.from({ length: 59 }, () => 100), 99]);
      await expect(JobState.fromStream(stream, other)).rejects.toMatchObject({
        code: 'E_RESULTS_FILE',
        message: expect.stringContaining('store 60 differs') as string,
      });
    } finally {
      await stream.close();
    }
  });

  it('ends the replay at the first line that fits no image, for the stores after it too', async () => {
    const { writer } = await journaledJob((state) => {
      state.recordImage(2, 0, doneImage('http://h/2/0'));
    });
    await writer.close(true);
    // A run's snapshot, then lines of a damaged journal: a fitting one, one
    // past the end of store 1, then one that would fit store 40 (read later).
    const journal = journalPathOf(path);
    appendFileSync(journal, '[1,0,2,3,"png",1,1,0,0]\n');
    appendFileSync(journal, '[1,100,2,3,"png",1,1,0,0]\n');
    appendFileSync(journal, '[40,0,2,3,"png",1,1,0,0]\n');
    const document = await loadResults(path);
    expect(document.stores[1]?.images[0]?.status).toBe('done');
    expect(document.stores[2]?.images[0]?.status).toBe('done');
    expect(document.stores[40]?.images[0]?.status).toBe('pending');
    expect(document.counts.done).toBe(2);
  });

  it('replays the rotated journal before the current one', async () => {
    const { writer } = await journaledJob(() => undefined);
    await writer.close(true);
    writeFileSync(
      oldJournalPathOf(path),
      '{"t":"store","s":9,"status":"failed","error":"first"}\n',
    );
    writeFileSync(journalPathOf(path), '{"t":"store","s":9,"status":"completed"}\n');
    const stream = await ResultsStream.open(path);
    const summary = await stream.summary();
    await stream.close();
    expect(summary.stores[9]).toEqual({
      store_id: 'S9',
      status: 'completed',
      images: 100,
      done: 0,
    });
  });

  it('refuses a file cut after a store, and a store that is not a store, naming it', async () => {
    const { writer } = await journaledJob(() => undefined);
    await writer.close(true);
    const lines = readFileSync(path, 'utf8').split('\n');
    writeFileSync(path, `${lines.slice(0, 31).join('\n')}\n`);
    await expect(loadResults(path)).rejects.toThrow(
      `${path} is not an imgjob results file (not valid JSON)`,
    );
    lines[5] = '{"store_id":"S4","status":"lost","images":[]},';
    writeFileSync(path, lines.join('\n'));
    await expect(loadResults(path)).rejects.toThrow(
      `${path} is not a valid imgjob results file: stores[4].status: expected one of`,
    );
  });
});

/** The CLI in this process: its exit code and what it printed. */
async function cli(
  args: readonly string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const io = { stdout, stderr, stdin: new PassThrough() } as unknown as CliIo;
  const code = await main(['node', 'imgjob', ...args], io);
  return { code, stdout: out, stderr: err };
}

describe('status and report of a big job while it runs', () => {
  it("show the journal's changes: the counts, and a row per image", async () => {
    const { writer } = await journaledJob(failStore3);
    try {
      const status = await cli(['status', path, '--json']);
      expect(status.code).toBe(3);
      expect(JSON.parse(status.stdout)).toMatchObject({
        status: 'ongoing',
        counts: { images: 6000, done: 2, failed: 1, pending: 5997 },
      });
      const report = await cli(['report', path, '--jsonl', '-']);
      expect(report.code, report.stderr).toBe(0);
      const rows = report.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(rows).toHaveLength(6000);
      expect(rows[301]).toMatchObject({
        store_id: 'S3',
        store_status: 'failed',
        image_index: 2,
        status: 'failed',
        error_code: 'E_HTTP_STATUS',
      });
      expect(rows.filter((row) => row.status === 'done')).toHaveLength(2);
      expect(report.stderr).toContain('is still ongoing');
    } finally {
      await writer.close(true);
    }
  });

  it('refuses an HTML report of more images than a browser opens, before reading any store', async () => {
    const document = JobState.create(
      jobInputOfGrid(1, 1),
      'job-html',
      OPTIONS,
      new Date(0),
    ).toDocument();
    const huge = {
      head: { ...document, counts: { ...document.counts, images: HTML_MAX_IMAGES + 1 } },
      stores: () => {
        throw new Error('read a store');
      },
    };
    const pieces = reportPieces('html', [reportJobOf(document), huge]);
    await expect(pieces.next()).rejects.toThrow(
      `the HTML report embeds every image, and ${HTML_MAX_IMAGES + 2} are more than a browser opens`,
    );
  });
});
