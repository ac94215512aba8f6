/**
 * The queue's housekeeping: a queue run stopped unfinished keeps its keys for
 * --queue-retention (then they expire), its resume hints keep --queue (the
 * password hidden), `imgjob queue status` lists it and `imgjob queue clean`
 * removes it. Real redis-server, the BUILT CLI for the run a signal stops;
 * the quick commands (`status`, `queue status`, `queue clean`) through
 * main() in this process.
 *
 * @module-tag e2e
 */
import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';

import type { QueueOverview } from '../src/queue/admin.js';
import { spawnCli, waitForResults } from './helpers/cli.js';
import { runMain } from './helpers/main.js';
import { expectPlainLines, gatedJob, queueTestBed } from './helpers/queue-cluster.js';

vi.setConfig({ testTimeout: 60_000 });

/** A spawned run's first word: a loaded machine (npm test's) may take over 10 s to start one. */
const WAIT = { timeoutMs: 30_000 };

const bed = queueTestBed();
const { available, folders } = bed;

async function overview(url: string): Promise<QueueOverview> {
  const result = await runMain(['queue', 'status', '--queue', url, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as QueueOverview;
}

/** Resolves once the coordinator has handed the job's store out (its Redis state says so). */
async function handedOut(url: string, jobId: string): Promise<void> {
  const client = new Redis(url);
  try {
    while ((await client.exists(`imgjob:handouts:${jobId}`)) === 0) {
      // Redis state is what this waits on; the pause only spaces the looks.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    client.disconnect();
  }
}

describe.skipIf(!available)('the queue housekeeping', () => {
  it.concurrent(
    'a stopped queue run: hints keep --queue, its keys expire after --queue-retention, queue status lists it, queue clean removes it',
    async () => {
      const url = bed.redis.urlFor(1);
      const job = gatedJob(bed.server, 'admin', [['image.png']]);
      folders.push(job.dir);
      // No worker: the store waits in the queue until the run is stopped.
      const run = spawnCli(['run', job.manifest, '--queue', url, '--queue-retention', '2h']);
      const { job_id: jobId } = await waitForResults(job.out, () => true, { run, ...WAIT });
      await handedOut(url, jobId);
      const stopped = await run.kill('SIGINT');
      expect(stopped.code, stopped.stderr).toBe(130);
      expect(stopped.stderr).toContain(`--queue ${url} --queue-retention 2h --resume`);
      expectPlainLines(stopped.stderr.replace(/^\n/, ''));

      const status = await runMain(['status', job.out]);
      expect(status.stdout).toMatch(new RegExp(`continue it with: imgjob run .* --queue ${url}`));

      const listed = (await overview(url)).jobs.find((entry) => entry.job_id === jobId);
      expect(listed).toMatchObject({ job_id: jobId, coordinator: null });
      expect(listed?.expires_in_s).toBeGreaterThan(7000);
      expect(listed?.expires_in_s).toBeLessThanOrEqual(7200);
      const text = await runMain(['queue', 'status', '--queue', url]);
      expect(text.stdout).toContain(`  ${jobId}: no coordinator; keys expire in 2 h\n`);
      expect(text.stdout).toContain('    stores: 0 waiting, 0 active, 0 stalled, 0 failed;');
      expect(text.stdout).toContain('workers: none on this queue');

      const cleaned = await runMain(['queue', 'clean', '--queue', url, '--job', jobId]);
      expect(cleaned.code, cleaned.stderr).toBe(0);
      expect(cleaned.stdout).toMatch(new RegExp(`^removed job ${jobId}: [1-9]\\d* key\\(s\\)`));
      expect((await overview(url)).jobs).toEqual([]);
      const client = new Redis(url);
      expect(await client.keys(`imgjob:*${jobId}*`)).toEqual([]);
      client.disconnect();

      const again = await runMain(['queue', 'clean', '--queue', url, '--job', jobId]);
      expect(again.code).toBe(2);
      expect(again.stderr).toBe(`imgjob: queue clean: no job ${jobId} on ${url}\n`);
    },
  );

  it.concurrent(
    'hides the password of --queue in the resume hint of an interrupted run',
    async () => {
      // A server of its own: the password is the whole server's, and the other case runs meanwhile.
      const server = await bed.ownRedis();
      const client = { redis: new Redis(server.url) };
      await client.redis.config('SET', 'requirepass', 'sup3rsecret');
      try {
        const url = server.urlFor(2).replace('redis://', 'redis://:sup3rsecret@');
        const job = gatedJob(bed.server, 'adminpw', [['image.png']]);
        folders.push(job.dir);
        const run = spawnCli(['run', job.manifest, '--queue', url]);
        await run.waitForOutput(/no imgjob worker on this queue/, 'stderr', WAIT);
        const stopped = await run.kill('SIGINT');
        expect(stopped.code, stopped.stderr).toBe(130);
        expect(stopped.stderr).toContain(
          `--queue 'redis://:***@127.0.0.1:${server.port}/2' --resume`,
        );
        expect(stopped.stderr + stopped.stdout).not.toContain('sup3rsecret');
        const status = await runMain(['status', job.out]);
        expect(status.stdout).toContain(`--queue 'redis://:***@127.0.0.1:${server.port}/2'`);
      } finally {
        await client.redis.call('AUTH', 'sup3rsecret');
        await client.redis.config('SET', 'requirepass', '');
        client.redis.disconnect();
      }
    },
  );
});
