/**
 * The results file is live on disk (SPEC "Results file", issue 8 §1): while
 * a job runs, a reader of the bare file — plain JSON.parse, no journal, as
 * jq or a dashboard reads it — always gets whole JSON, and sees the done
 * count rise at least every 1.5 s (the file is refreshed about every second).
 *
 * @module-tag e2e
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ResultsDocument } from '../src/types.js';
import { spawnCli, stopAll } from './helpers/cli.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const STORES = 10;
const IMAGES = 20;

let server: FaultServer;
let dir: string;
beforeAll(async () => {
  server = await startFaultServer();
  dir = mkdtempSync(join(tmpdir(), 'imgjob-live-'));
});
afterAll(async () => {
  await stopAll();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

type Reading = { readonly at: number; readonly done: number };

describe('the bare results file while a job runs', () => {
  it('parses at every read and its done count rises at least every 1.5 s', async () => {
    const manifest = join(dir, 'live.json');
    const visits = Array.from({ length: STORES }, (_, store) => ({
      store_id: `S${store}`,
      image_url: Array.from({ length: IMAGES }, (_, n) =>
        server.url(`/img/image.png?n=${store * IMAGES + n}`),
      ),
    }));
    writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
    const out = join(dir, 'live.results.json');
    // One store at a time, 20 ms of GPU per image: 200 images take ≥ 4 s.
    const run = spawnCli(['run', manifest, '-o', out, '--gpu-delay', '20', '-c', '1']);

    const readings: Reading[] = [];
    while (!run.done) {
      if (existsSync(out)) {
        const text = readFileSync(out, 'utf8');
        // Throws (and fails the test) on a torn or half-written file.
        const document = JSON.parse(text) as ResultsDocument;
        readings.push({ at: performance.now(), done: document.counts.done });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const result = await run.exited;
    expect(result.code, result.stderr).toBe(0);
    const final = JSON.parse(readFileSync(out, 'utf8')) as ResultsDocument;
    expect(final.counts.done).toBe(STORES * IMAGES);

    // From the first read until the job's last image: never 1.5 s without news.
    const rises = readings.filter(
      (reading, index) => reading.done > (readings[index - 1]?.done ?? 0),
    );
    const start = readings[0]?.at ?? 0;
    const times = [start, ...rises.map((reading) => reading.at)];
    const gaps = times.slice(1).map((at, index) => at - (times[index] ?? at));
    expect(readings.length, 'a job of several seconds').toBeGreaterThan(30);
    expect(rises.length).toBeGreaterThan(3);
    expect(
      Math.max(...gaps),
      `gaps between rises: ${gaps.map(Math.round).join(', ')} ms`,
    ).toBeLessThanOrEqual(1500);
    // And the readings were live, not only the last one: most of the job was seen in progress.
    expect(rises.filter((reading) => reading.done < STORES * IMAGES).length).toBeGreaterThan(2);
  });
});
