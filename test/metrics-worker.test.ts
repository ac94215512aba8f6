/**
 * `/metrics` of `imgjob worker --metrics-port`, on a real redis-server: the
 * worker is scraped while it holds a store (its image held at a gate) and
 * after the coordinator's run ended. Every scrape passes `promtool check
 * metrics`; counters only rise; the worker's image counters equal the
 * results file (it was the only worker); the queue gauges see it. Its events
 * are JSON lines on stderr (--log-format json).
 *
 * @module-tag e2e
 */
import { describe, expect, it, vi } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import { spawnCli } from './helpers/cli.js';
import { expectCountersRose, expectImagesOf, scrape } from './helpers/metrics.js';
import { coordinateHere, gatedJob, queueTestBed } from './helpers/queue-cluster.js';

// A worker, a coordinator and Redis on a loaded machine.
vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();

describe.skipIf(!bed.available)('worker --metrics-port', () => {
  it('counts the stores it ran, sees itself and the queue, and counters only rise', async () => {
    const redis = bed.redis.urlFor(3);
    const job = gatedJob(bed.server, 'metrics', [
      ['image.png', 'image.gif'],
      ['image.bmp', 'not-an-image.html', 'image.png'],
      ['baseline.jpg'],
    ]);
    bed.folders.push(job.dir);
    const worker = spawnCli([
      'worker',
      '--queue',
      redis,
      '-c',
      '1',
      '--metrics-port',
      '0',
      '--log-format',
      'json',
    ]);
    // A loaded machine (npm test's) may take over 10 s to start a process.
    await worker.waitForOutput(/"event":"worker_ready"/, 'stderr', { timeoutMs: 30_000 });
    const url = String(
      events(worker.stderr).find((line) => line.event === 'metrics_listening')?.url,
    );
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // The worker says it is ready as it announces itself: the listing lands a moment after.
    const first = await vi.waitFor(
      async () => {
        const scraped = await scrape(url);
        expect(scraped.value('imgjob_workers')).toBe(1);
        return scraped;
      },
      { timeout: 10_000, interval: 20 },
    );

    // One slot, longest store first: the worker holds S2 at its second image.
    for (const [store, index] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 2],
      [2, 0],
    ] as const) {
      job.open(store, index);
    }
    // The worker is the process scraped; the coordinator's process is not the point.
    const run = coordinateHere([
      'run',
      job.manifest,
      '--queue',
      redis,
      '--gpu-delay',
      '1-5',
      '--seed',
      '9',
    ]);
    await bed.server.gate(job.key(1, 1)).reached;
    // Image 2 may be requested while image 1 is still on the GPU: wait for image 1's result.
    const during = await vi.waitFor(
      async () => {
        const scraped = await scrape(url);
        expect(scraped.value('imgjob_images_total', { status: 'done' })).toBe(1);
        return scraped;
      },
      { timeout: 10_000, interval: 20 },
    );
    expectCountersRose(first, during);
    expect(during.value('imgjob_images_total', { status: 'done' })).toBe(1);
    expect(during.value('imgjob_stores', { state: 'ongoing' })).toBe(1);
    expect(during.value('imgjob_queue_stores', { state: 'active' })).toBe(1);
    expect(during.value('imgjob_workers')).toBe(1);

    job.openAll();
    const ended = await run.exited;
    expect(ended.code, ended.stderr).toBe(1);
    const after = await scrape(url);
    expectCountersRose(during, after);
    expectImagesOf(after, [await loadResults(job.out)]);
    expect(after.value('imgjob_stores', { state: 'ongoing' })).toBe(0);
    expect(after.value('imgjob_queue_stores', { state: 'active' })).toBe(0);
    const { code, stdout, stderr } = await worker.kill('SIGTERM');
    expect(code).toBe(143);
    // JSON lines on stderr, nothing on stdout: one line per store started and finished.
    expect(stdout).toBe('');
    const lines = events(stderr);
    expect(lines.filter((line) => line.event === 'store_started')).toHaveLength(3);
    const finished = lines.filter((line) => line.event === 'store_finished');
    expect(
      finished.map((line) => `${String(line.store_id)} ${String(line.status)}`).sort(),
    ).toEqual(['S0 completed', 'S1 failed', 'S2 completed']);
    expect(lines.at(-1)).toMatchObject({ event: 'stopped', level: 'notice' });
  });
});

function events(text: string): { event: string; [field: string]: unknown }[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { event: string });
}
