/**
 * The largest submit serve takes (issue 19, "Submits"): parsing, checking
 * and recording it never keeps other clients waiting more than 100 ms.
 * Asserted two ways: a /healthz probe from another process, and the
 * server's own longest event-loop hold (monitorEventLoopDelay) while the
 * submit is taken in.
 *
 * @module-tag e2e
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import { afterAll, describe, expect, it } from 'vitest';

import { SERVE_DEFAULTS } from '../src/serve/defaults.js';
import type { JobStatusDocument } from '../src/serve/job-records.js';
import { startServer } from '../src/serve/server.js';
import { call, postPieces } from './helpers/serve-client.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-submit-hold-'));
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

/**
 * The most work one body may carry: --max-stores stores, each with as many
 * images as --max-body and --max-images leave room for: 10 each, a million
 * images in 16.6 MB. The URLs are on 0.0.0.0 (the shortest spelling), which
 * the server refuses without --allow-private and without a DNS lookup. Every
 * store has the same URLs, so the text is spelt directly (JSON.stringify's
 * bytes), not through a million-string object, and written into one buffer
 * 64 KiB at a time: 100,000 strings joined, then encoded, took ~0.3 s more.
 */
function largestManifest(): Buffer {
  const stores = SERVE_DEFAULTS.maxStores;
  // One byte past the limit: a body that reaches it is too long.
  const room = Buffer.allocUnsafe(SERVE_DEFAULTS.maxBodyBytes + 1);
  for (let perStore = SERVE_DEFAULTS.maxImages / stores; ; perStore--) {
    const urls = JSON.stringify(
      Array.from({ length: perStore }, (_, image) => `http://0/${image}`),
    );
    let at = room.write(`{"count":${stores},"visits":[`);
    let text = '';
    for (let store = 0; store < stores && at < room.length; store++) {
      text += `${store === 0 ? '' : ','}{"store_id":"S${store}","image_url":${urls}}`;
      if (text.length > 64 * 1024) {
        at += room.write(text, at);
        text = '';
      }
    }
    at += room.write(`${text}]}`, at);
    if (at <= SERVE_DEFAULTS.maxBodyBytes) return room.subarray(0, at);
  }
}

/** Probes `url` in a process of its own until its stdin closes; prints every latency in ms. */
const PROBE = `
let stop = false;
process.stdin.on('end', () => { stop = true; }).resume();
const url = process.argv[1];
const latencies = [];
(async () => {
  while (!stop) {
    const started = performance.now();
    const res = await fetch(url);
    await res.text();
    if (res.status !== 200) throw new Error('healthz answered ' + res.status);
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  process.stdout.write(JSON.stringify(latencies));
})();
`;

describe('the largest allowed submit', () => {
  it('holds the event loop < 100 ms at a time, and /healthz answers meanwhile', async () => {
    const body = largestManifest();
    const server = await startServer({
      port: 0,
      dbPath: join(folder, 'hold.db'),
      options: serveOptions({ concurrency: 8 }),
    });
    const probe = spawn(process.execPath, ['-e', PROBE, `${server.url}/healthz`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let output = '';
    probe.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const probed = new Promise<number[]>((resolve, reject) => {
      probe.on('error', reject);
      probe.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(output) as number[]);
        else reject(new Error(`the probe exited ${code}`));
      });
    });
    // Awaited below; a test failing before then kills the probe.
    probed.catch(() => undefined);
    const status = async (): Promise<JobStatusDocument> =>
      (await call(server.url, '/api/status?jobid=1')).body as JobStatusDocument;
    const delay = monitorEventLoopDelay({ resolution: 1 });
    try {
      delay.enable();
      const started = performance.now();
      // 64 KiB at a time, as a client sends it (fetch would copy all 16 MB at once, here).
      const pieces: Buffer[] = [];
      for (let at = 0; at < body.length; at += 64 * 1024)
        pieces.push(body.subarray(at, at + 64 * 1024));
      const reply = await postPieces(`${server.url}/api/submit/`, pieces, body.length);
      const submitMs = performance.now() - started;
      expect(reply.status, reply.text).toBe(201);
      // The job is prepared (its stores ordered and queued) on later turns,
      // after the answer: measured until its first stores have run.
      await expect
        .poll(async () => (await status()).counts.failed, { interval: 10, timeout: 30_000 })
        .toBeGreaterThan(0);
      delay.disable();
      probe.stdin.end();
      const latencies = await probed;
      const holdMs = delay.max / 1e6;
      const slowest = Math.max(...latencies);
      const figures = `submit of ${body.length} bytes in ${Math.round(submitMs)} ms; longest event-loop hold ${holdMs.toFixed(1)} ms; /healthz ${latencies.length} probes, slowest ${slowest.toFixed(1)} ms`;
      console.log(figures);
      // Before the submit was taken in slices: 450 ms and more in one piece.
      expect(holdMs, figures).toBeLessThan(100);
      // Wall-clock probes on a shared 2-core machine wait on the OS as well as
      // on the server (seen: 74-161 ms with the server's hold at 40-66 ms), so
      // they only bound it loosely; the hold above is the measure.
      expect(latencies.length, figures).toBeGreaterThan(10);
      expect(slowest, figures).toBeLessThan(1000);
      // The job was taken whole.
      expect(await status()).toMatchObject({ counts: { stores: 100_000, images: 1_000_000 } });
    } finally {
      probe.kill();
      await server.close();
    }
  }, 60_000);
});
