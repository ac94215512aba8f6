/**
 * `serve --queue --queue-retention`: a job left unfinished when the server
 * stops keeps its Redis keys for the retention given, not the 7-day default.
 * Real redis-server, the BUILT CLI's serve (queue status through main()).
 *
 * @module-tag e2e
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import type { QueueOverview } from '../src/queue/admin.js';
import { spawnServe } from './helpers/cli.js';
import { runMain } from './helpers/main.js';
import { gatedJob, queueTestBed } from './helpers/queue-cluster.js';
import { submitOk } from './helpers/serve-client.js';

vi.setConfig({ testTimeout: 60_000 });

const bed = queueTestBed();
const { available, folders } = bed;

/** Resolves once some job's store has been handed out (Redis says so). */
async function handedOut(url: string): Promise<void> {
  const client = new Redis(url);
  try {
    while ((await client.keys('imgjob:handouts:*')).length === 0) {
      // Redis state is what this waits on; the pause only spaces the looks.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    client.disconnect();
  }
}

describe.skipIf(!available)('serve --queue-retention', () => {
  it('keeps the keys of a job unfinished at shutdown for --queue-retention', async () => {
    const url = bed.redis.urlFor(3);
    const job = gatedJob(bed.server, 'retention', [['image.png']]);
    folders.push(job.dir);
    // No worker: the store waits in the queue until the server stops.
    const served = await spawnServe(join(job.dir, 'jobs.db'), [
      '--gpu-delay',
      '0',
      '--queue',
      url,
      '--queue-retention',
      '2h',
    ]);
    await submitOk(served.url, JSON.parse(readFileSync(job.manifest, 'utf8')));
    await handedOut(url);
    const stopped = await served.run.kill('SIGTERM');
    expect(stopped.code, stopped.stderr).toBe(0);

    const status = await runMain(['queue', 'status', '--queue', url, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const { jobs } = JSON.parse(status.stdout) as QueueOverview;
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.coordinator).toBeNull();
    expect(jobs[0]?.expires_in_s).toBeGreaterThan(7000);
    expect(jobs[0]?.expires_in_s).toBeLessThanOrEqual(7200);
  });
});
