/**
 * The queue coordinator takes a manifest in any form: the job of a CSV
 * manifest, run on an `imgjob worker` through a real redis-server, ends with
 * the results of the same job run locally from the Retail Pulse JSON.
 *
 * @module-tag e2e
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { runJobHere } from './helpers/main.js';
import { spell, type Visit } from './helpers/manifest-forms.js';
import { comparable, gatedJob, localReference, queueTestBed } from './helpers/queue-cluster.js';
import { workersHere } from './helpers/queue-worker.js';

const ARGS = ['--gpu-delay', '0-20', '--seed', '7', '--retries', '0'];
const STORES = [
  ['image.png', 'image.gif', 'baseline.jpg'],
  ['image.tiff', 'not-an-image.html', 'image.png'],
  ['image.webp'],
];

// Several processes on a loaded machine: more than the default 30 s.
vi.setConfig({ testTimeout: 90_000 });

const bed = queueTestBed();
// What the worker and the coordinator reading the CSV record is what counts, not their
// processes: both run here (a spawned one costs ~0.5 s of CPU).
const startWorkerHere = workersHere();

describe.skipIf(!bed.available)('run --queue on a CSV manifest', () => {
  it('gives the results of the same job run locally from its JSON', async () => {
    const url = bed.redis.urlFor(1);
    const [reference, worker] = await Promise.all([
      localReference(bed, 'json', STORES, ARGS),
      startWorkerHere(url),
    ]);
    expect(reference.code).toBe(1);

    const job = gatedJob(bed.server, 'csv', STORES);
    bed.folders.push(job.dir);
    job.openAll();
    const { visits } = JSON.parse(readFileSync(job.manifest, 'utf8')) as { visits: Visit[] };
    const csv = join(job.dir, 'manifest.csv');
    writeFileSync(csv, spell(visits).csv);

    const run = await runJobHere(['run', csv, '-o', job.out, ...ARGS, '--queue', url]);
    expect(run.code, run.stderr).toBe(1);
    expect(comparable(await loadResults(job.out))).toEqual(comparable(reference.document));
    await worker.stop();
  });
});
