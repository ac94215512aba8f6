// @module-tag e2e
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDownloader } from '../src/download/downloader.js';
import { DownloadError } from '../src/utils/errors.js';
import { spawnCli, stopAll, waitForResults } from './helpers/cli.js';
import { runMain } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

let server: FaultServer;
let limiter: FaultServer;
let folder: string;

beforeAll(async () => {
  [server, limiter] = await Promise.all([startFaultServer(), startFaultServer()]);
  folder = mkdtempSync(join(tmpdir(), 'imgjob-slow-'));
});
afterAll(async () => {
  await stopAll();
  await Promise.all([server.close(), limiter.close()]);
  rmSync(folder, { recursive: true, force: true });
});

describe('--speed-limit and --speed-time', () => {
  it('stops an attempt slower than the limit for that long and retries it, as curl does', async () => {
    const downloader = createDownloader({
      timeoutMs: 60_000,
      maxBytes: 1_000_000,
      retries: 1,
      retryBaseMs: 1,
      headerOnly: false,
      perHost: 2,
      speedLimit: { bytesPerSecond: 1000, seconds: 1 },
    });
    try {
      // 10 bytes every 100 ms: 100 bytes/s, a tenth of the limit.
      const error: unknown = await downloader
        .fetchImage(server.url('/slow/10/100/image.png'))
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DownloadError);
      expect(error).toMatchObject({
        code: 'E_TIMEOUT',
        attempts: 2,
        message: 'slower than 1000 bytes/s for 1 s (after 2 attempts)',
      });
      expect(server.requestsTo('/slow/10/100/')).toHaveLength(2);
      // A fast body under the same limit is not touched.
      await expect(downloader.fetchImage(server.url('/img/image.png'))).resolves.toMatchObject({
        attempts: 1,
      });
    } finally {
      await downloader.close();
    }
  });
});

describe('status of a running job', () => {
  it('names the hosts paused by a Retry-After and the slowest downloads in flight', async () => {
    const visits = [
      // 48 bytes a second: the 512-byte image takes about 11 s.
      { store_id: 'slow', image_url: [server.url('/slow/48/1000/image.png')] },
      {
        store_id: 'limited',
        image_url: [limiter.url('/status/429?retry-after=60'), limiter.url('/img/image.png')],
      },
    ];
    const manifest = join(folder, 'live.json');
    writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
    const out = join(folder, 'live.results.json');
    const run = spawnCli(['run', manifest, '-o', out, '--gpu-delay', '0', '--retries', '2']);
    await waitForResults(
      out,
      (document) =>
        (document.network?.slowest?.length ?? 0) > 0 && (document.network?.paused?.total ?? 0) > 0,
      { run, timeoutMs: 15_000 },
    );
    const { code, stdout } = await runMain(['status', out]);
    expect(code).toBe(3);
    expect(stdout).toContain('1 host paused (429)');
    expect(stdout).toMatch(/slowest downloads: …\/image\.png \d+s \d+ B/);
    await run.kill('SIGINT');
    // The pause held: the limited host was asked once, its second image not at all.
    expect(limiter.requests).toHaveLength(1);
  }, 20_000);
});
