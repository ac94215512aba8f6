import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { journalPathOf } from '../src/results/paths.js';
import { ResultsWriter } from '../src/results/writer.js';
import { doneImage, jobInputOfGrid, resultOptions } from './helpers/job-input.js';
import { journalWritten } from './helpers/journal.js';

/** A writer that may snapshot at once by time and by its blocking cost: only the byte budget can hold it back. */
async function run(bytesPerSecond: number): Promise<{ saves: number; journalLines: number }> {
  const path = join(mkdtempSync(join(tmpdir(), 'imgjob-pace-')), 'job.results.json');
  const state = JobState.create(jobInputOfGrid(2, 3), 'job-pace', resultOptions(), new Date(0));
  const writer = new ResultsWriter(path, state, {
    intervalMs: 0,
    maxShare: Infinity,
    bytesPerSecond,
  });
  await writer.open();
  for (let image = 0; image < 3; image++) {
    state.recordImage(0, image, doneImage(`http://h/0/${image}`));
    // The snapshot timer (if any) was set before the journal's: it fires first.
    await journalWritten();
  }
  const seen = {
    saves: writer.stats.saves,
    journalLines: readFileSync(journalPathOf(path), 'utf8').split('\n').length - 1,
  };
  await writer.close(false);
  return seen;
}

describe('snapshots of a running job', () => {
  it('are spaced by their size: a snapshot writes at most bytesPerSecond on average, the journal carries the rest', async () => {
    // A ~1 KB snapshot: free to refresh at once, each change rotates the journal.
    const free = await run(Infinity);
    expect(free.saves).toBeGreaterThanOrEqual(2);
    expect(free.journalLines).toBeLessThan(3);
    // At 1 byte a second, the next snapshot of ~1 KB is ~20 minutes away: the journal holds every change.
    const paced = await run(1);
    expect(paced).toEqual({ saves: 1, journalLines: 3 });
  });
});
