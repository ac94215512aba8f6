/**
 * The library's defaults: a caller of `runJobs` or `createDownloader` may
 * leave any option out and gets the default its JSDoc names, the same one
 * the command line's `--help` shows.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { main } from '../src/cli/main.js';
import type { CliIo } from '../src/cli/io.js';
import { createDownloader } from '../src/download/downloader.js';
import { RUN_DEFAULTS, runJobs } from '../src/index.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer();
});
afterAll(async () => {
  await server.close();
});

describe('runJobs without options', () => {
  it('runs the job and records the defaults as its options', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgjob-defaults-'));
    const manifest = join(dir, 'm.json');
    const visits = [{ store_id: 'S1', image_url: [server.url('/img/image.png')], visit_time: 'x' }];
    writeFileSync(manifest, JSON.stringify({ count: 1, visits }));
    const slept: number[] = [];
    const [report] = await runJobs({
      manifests: [manifest],
      sleep: (ms) => {
        slept.push(ms);
        return Promise.resolve();
      },
    });
    expect(report?.document.status).toBe('completed');
    expect(report?.document.options).toMatchObject({
      gpu_delay: '100-400',
      header_only: false,
      max_bytes: 50 * 1024 * 1024,
    });
    expect(slept).toHaveLength(1);
    expect(slept[0]).toBeGreaterThanOrEqual(100);
    expect(slept[0]).toBeLessThanOrEqual(400);
  });
});

describe('createDownloader without options', () => {
  it('follows 5 redirects and refuses the 6th', async () => {
    const downloader = createDownloader({});
    try {
      await expect(
        downloader.fetchImage(server.url('/redirect/5/image.png')),
      ).resolves.toMatchObject({ width: expect.any(Number) as number });
      await expect(
        downloader.fetchImage(server.url('/redirect/6/image.png')),
      ).rejects.toMatchObject({
        code: 'E_REDIRECT',
        message: expect.stringContaining('more than 5 redirects') as string,
      });
    } finally {
      await downloader.close();
    }
  });
});

describe('imgjob run --help', () => {
  it('shows the library defaults as the flags defaults', async () => {
    const stdout = new PassThrough();
    let help = '';
    stdout.on('data', (chunk: Buffer) => (help += chunk.toString()));
    const io = { stdout, stderr: new PassThrough(), stdin: new PassThrough() } as unknown as CliIo;
    await main(['node', 'imgjob', 'run', '--help'], io);
    const flat = help.replace(/\s+/g, ' ');
    expect(flat).toMatch(
      new RegExp(`--concurrency <n> .*?\\(default: ${RUN_DEFAULTS.concurrency}\\)`),
    );
    expect(flat).toMatch(/--gpu-delay <ms\|min-max> .*?\(default: 100-400\)/);
    expect(flat).toMatch(new RegExp(`--retries <n> .*?\\(default: ${RUN_DEFAULTS.retries}\\)`));
    expect(flat).toMatch(
      new RegExp(`--retry-wait <ms> .*?\\(default: ${RUN_DEFAULTS.retryBaseMs}\\)`),
    );
    expect(flat).toMatch(new RegExp(`--timeout <ms> .*?\\(default: ${RUN_DEFAULTS.timeoutMs}\\)`));
    expect(flat).toMatch(new RegExp(`--max-bytes <n> .*?\\(default: ${RUN_DEFAULTS.maxBytes}\\)`));
    expect(flat).toMatch(new RegExp(`--per-host <n> .*?\\(default: ${RUN_DEFAULTS.perHost}\\)`));
  });
});
