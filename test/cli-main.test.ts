/** The CLI entry called in-process, for what a spawned process cannot show deterministically. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { jobInputOf, resultOptions } from './helpers/job-input.js';
import { runMain } from './helpers/main.js';

describe('main', () => {
  it('treats a reader that closed stdout early (EPIPE) as no error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgjob-main-'));
    const path = join(dir, 'job.results.json');
    const input = jobInputOf({ S: ['http://h/a'] });
    const options = resultOptions({ seed: null, max_bytes: 1 });
    writeFileSync(
      path,
      JSON.stringify(JobState.create(input, 'job', options, new Date(0)).toDocument()),
    );

    let writes = 0;
    const closedPipe = new Writable({
      write(_chunk, _encoding, callback) {
        writes++;
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const { code, stderr } = await runMain(['status', path], { stdout: closedPipe });
    expect(code, stderr).toBe(3);
    expect(writes).toBeGreaterThan(0);
  });
});
