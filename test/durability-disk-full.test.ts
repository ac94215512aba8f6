/**
 * A full disk, on a real small tmpfs (issue 13 §1): write(2) there returns a
 * short count before it fails, which is exactly what once truncated results
 * files. A failed journal write, snapshot or final save must never replace
 * the results file, never drop a journal, stop the run with one line (exit
 * 2), and leave results that `--resume` completes once space is freed.
 * Where no tmpfs can be mounted (not root), the CLI run is also tried with
 * short writes injected (IMGJOB_TEST_FS_LIMIT); under CI=true a failed mount
 * fails instead.
 *
 * @module-tag e2e
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { parseJournal } from '../src/results/journal.js';
import { lockPathOf, journalPathOf, oldJournalPathOf } from '../src/results/paths.js';
import { loadResults } from '../src/results/reader.js';
import { ResultsSaveError } from '../src/results/save-error.js';
import { ResultsWriter } from '../src/results/writer.js';
import type { JobInput, ResultsDocument } from '../src/types.js';
import { runCli, stopAll } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { doneImage, jobInputOfGrid, resultOptions } from './helpers/job-input.js';
import { mountTmpfs, tmpfsSkipReason, type Tmpfs } from './helpers/tmpfs.js';
import { journalWritten } from './helpers/journal.js';
import { runJobHere, runMain } from './helpers/main.js';

const skipReason = tmpfsSkipReason();
if (skipReason) console.log(`skipping the full-disk tests: ${skipReason}`);

const OPTIONS = resultOptions({ max_bytes: 10 });

let gridJob: JobInput | undefined;
/** The writer tests' job of 60 stores of 100 images, built once (a JobState only reads it). */
function sixtyStores(): JobInput {
  gridJob ??= jobInputOfGrid(60, 100);
  return gridJob;
}

const done = doneImage;

/** Records images `from` ≤ i < `to` of a job of 100-image stores as done. */
function record(state: JobState, from: number, to: number): void {
  for (let n = from; n < to; n++) {
    const store = Math.floor(n / 100);
    state.recordImage(store, n % 100, done(`http://h/${store}/${n % 100}`));
  }
}

const DISK_FULL =
  /^cannot save .+: disk full \(needs about [\d.]+ [KMG]?B free\); free some space, then run the same command with --resume$/;

let disk: Tmpfs | undefined;
afterEach(() => {
  disk?.unmount();
  disk = undefined;
});

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.endsWith('.tmp'));
}

describe.skipIf(skipReason !== undefined)('the results writer on a full tmpfs', () => {
  it('a journal write that comes up short: whole lines kept, the run told once, the file intact', async () => {
    disk = mountTmpfs('2m');
    const path = join(disk.dir, 'job.results.json');
    const state = JobState.create(sixtyStores(), 'job-j', OPTIONS, new Date(0));
    const failures: unknown[] = [];
    const writer = new ResultsWriter(path, state, {
      intervalMs: 60_000,
      onFailure: (error) => failures.push(error),
    });
    await writer.open();
    const first = readFileSync(path, 'utf8');
    record(state, 0, 50);
    await journalWritten();
    const journalBefore = readFileSync(journalPathOf(path), 'utf8');
    expect(parseJournal(journalBefore)).toHaveLength(50);

    // About one page free: the next 400 lines (~12 KB) go out in part, then fail.
    disk.fill(4096);
    record(state, 50, 450);
    await journalWritten();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(ResultsSaveError);
    expect((failures[0] as ResultsSaveError).errno).toBe('ENOSPC');
    expect((failures[0] as Error).message).toMatch(DISK_FULL);
    expect((failures[0] as Error).message).toContain(path);
    // Cut back to the last whole line: nothing torn, nothing after it.
    expect(readFileSync(journalPathOf(path), 'utf8')).toBe(journalBefore);
    record(state, 450, 460);
    await journalWritten();
    expect(readFileSync(journalPathOf(path), 'utf8')).toBe(journalBefore);

    // The final save fails too: the snapshot and the journal stay as they were.
    await expect(writer.close(false)).rejects.toThrow(DISK_FULL);
    expect(readFileSync(path, 'utf8')).toBe(first);
    expect(readFileSync(journalPathOf(path), 'utf8')).toBe(journalBefore);
    expect(tempFiles(disk.dir)).toEqual([]);
    expect((await loadResults(path)).counts.done).toBe(50);

    // Space freed: the job is taken up from what was saved and finishes.
    disk.resize('8m');
    await finishFrom(path);
  });

  it('a snapshot that does not fit: the temp file goes, the last snapshot and both journals stay', async () => {
    disk = mountTmpfs('4m');
    const path = join(disk.dir, 'job.results.json');
    const state = JobState.create(sixtyStores(), 'job-s', OPTIONS, new Date(0));
    const failures: unknown[] = [];
    const writer = new ResultsWriter(path, state, {
      intervalMs: 0,
      maxShare: Infinity,
      onFailure: (error) => failures.push(error),
    });
    await writer.open();
    record(state, 0, 1000);
    const snapshot = await waitForBareFile(path, (document) => document.counts.done === 1000);
    await waitFor(() => !existsSync(oldJournalPathOf(path)));

    // Room for the journal lines (~80 KB), not for a ~600 KB snapshot.
    disk.fill(256 * 1024);
    record(state, 1000, 2000);
    await waitFor(() => failures.length > 0);
    expect((failures[0] as ResultsSaveError).errno).toBe('ENOSPC');
    expect((failures[0] as Error).message).toMatch(DISK_FULL);
    expect(readFileSync(path, 'utf8')).toBe(snapshot);
    expect(tempFiles(disk.dir)).toEqual([]);
    // The rotated journal is all that holds images 1000–1999 now.
    expect(existsSync(oldJournalPathOf(path))).toBe(true);
    expect((await loadResults(path)).counts.done).toBe(2000);

    await expect(writer.close(false)).rejects.toThrow(DISK_FULL);
    expect(readFileSync(path, 'utf8')).toBe(snapshot);
    expect((await loadResults(path)).counts.done).toBe(2000);
    disk.resize('16m');
    await finishFrom(path);
  });

  it('a final save that does not fit: rejected, the file and journal as they were, then resumable', async () => {
    disk = mountTmpfs('4m');
    const path = join(disk.dir, 'job.results.json');
    const state = JobState.create(sixtyStores(), 'job-f', OPTIONS, new Date(0));
    const writer = new ResultsWriter(path, state, { intervalMs: 60_000 });
    await writer.open();
    const first = readFileSync(path, 'utf8');
    record(state, 0, 6000);
    await journalWritten();
    const journal = readFileSync(journalPathOf(path), 'utf8');

    // ~100 KB free for a ~800 KB document: the write comes up short.
    disk.fill(100 * 1024);
    const closing = writer.close(false);
    await expect(closing).rejects.toBeInstanceOf(ResultsSaveError);
    await expect(closing).rejects.toThrow(DISK_FULL);
    expect(readFileSync(path, 'utf8')).toBe(first);
    expect(readFileSync(journalPathOf(path), 'utf8')).toBe(journal);
    expect(tempFiles(disk.dir)).toEqual([]);
    const loaded = await loadResults(path);
    expect(loaded.counts.done).toBe(6000);
    expect(loaded.status).toBe('ongoing');

    rmSync(join(disk.dir, 'filler'));
    await finishFrom(path);
  });
});

/** Resumes the job saved at `path` and closes it: the file is whole and final. */
async function finishFrom(path: string): Promise<void> {
  const loaded = await loadResults(path);
  const state = JobState.fromDocument(loaded);
  const writer = new ResultsWriter(path, state, { continues: true });
  await writer.open();
  state.recordImage(0, 0, done('http://h/0/0'));
  await writer.close(false);
  const final = JSON.parse(readFileSync(path, 'utf8')) as ResultsDocument;
  expect(final.counts.done).toBeGreaterThanOrEqual(loaded.counts.done);
  expect(final.finished_at).toBeDefined();
  expect(existsSync(journalPathOf(path))).toBe(false);
  expect(existsSync(oldJournalPathOf(path))).toBe(false);
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The bare file (no journal) once it satisfies `predicate`; its text. */
async function waitForBareFile(
  path: string,
  predicate: (document: ResultsDocument) => boolean,
): Promise<string> {
  let text = '';
  await waitFor(() => {
    text = readFileSync(path, 'utf8');
    return predicate(JSON.parse(text) as ResultsDocument);
  });
  return text;
}

describe('imgjob run on a disk that fills up', () => {
  let server: FaultServer;
  let work: string;
  beforeAll(async () => {
    server = await startFaultServer();
    work = mkdtempSync(join(tmpdir(), 'imgjob-full-'));
  });
  afterAll(async () => {
    await stopAll();
    await server.close();
    rmSync(work, { recursive: true, force: true });
  });

  /**
   * Runs a 500-image job (~60 KB pending, ~160 KB done, indented) into
   * `folder` until the disk is full, frees space with `free()`, resumes.
   */
  async function fillAndResume(
    folder: string,
    env: Record<string, string>,
    free: () => void,
  ): Promise<void> {
    const manifest = join(work, 'big.json');
    const visits = Array.from({ length: 5 }, (_, store) => ({
      store_id: `S${store}`,
      image_url: Array.from({ length: 100 }, (_, n) =>
        server.url(`/img/image.png?n=${store * 100 + n}`),
      ),
    }));
    writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
    const out = join(folder, 'big.results.json');
    const args = ['run', manifest, '-o', out, '--gpu-delay', '0', '-c', '20', '--retries', '0'];

    const failed = await runCli(args, { env });
    expect(failed.code, failed.stderr).toBe(2);
    const lines = failed.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^imgjob: /);
    expect(lines[0]?.slice('imgjob: '.length)).toMatch(DISK_FULL);
    expect(lines[0]).toContain(out);
    expect(failed.stdout).toBe('');

    // Whole JSON on disk, the journal kept, nothing half-written left.
    const bare = JSON.parse(readFileSync(out, 'utf8')) as ResultsDocument;
    expect(bare.job_id).toMatch(/./);
    expect(existsSync(journalPathOf(out))).toBe(true);
    expect(tempFiles(folder)).toEqual([]);
    expect(existsSync(lockPathOf(out))).toBe(false);
    // Snapshot and journal together: what was recorded (all of it, when
    // only the final save failed), as `status` shows it.
    const saved = await loadResults(out);
    const status = await runMain(['status', out]);
    expect(status.code, status.stderr).toBe(saved.status === 'ongoing' ? 3 : 0);

    free();
    const mark = server.requests.length;
    const resumed = await runJobHere([...args, '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const final = await loadResults(out);
    expect(final.job_id).toBe(saved.job_id);
    expect(final.status).toBe('completed');
    expect(final.counts).toMatchObject({ images: 500, done: 500, pending: 0 });
    // Only what was not saved is fetched again.
    expect(server.requests.length - mark).toBe(saved.counts.pending);
    expect(existsSync(journalPathOf(out))).toBe(false);
    expect(existsSync(oldJournalPathOf(out))).toBe(false);
    expect(existsSync(lockPathOf(out))).toBe(false);
  }

  it.skipIf(skipReason !== undefined)(
    'of 175 KB (a real tmpfs): one line and exit 2, a whole file and its journal kept, and --resume completes once space is freed',
    async () => {
      const full = mountTmpfs('175k');
      disk = full;
      await fillAndResume(full.dir, {}, () => {
        full.resize('8m');
      });
    },
  );

  it('with short writes injected where no tmpfs can be mounted (IMGJOB_TEST_FS_LIMIT): the same', async () => {
    const folder = join(work, 'injected');
    mkdirSync(folder);
    // Room for the first snapshot and some journal lines, not for the rest.
    await fillAndResume(folder, { IMGJOB_TEST_FS_LIMIT: '100000' }, () => undefined);
  });
});
