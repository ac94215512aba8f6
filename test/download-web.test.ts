/**
 * The simulated web of bench/sim-web.js, small: 40 hosts on 127.20.0.x
 * (transient 503s, rate limits with Retry-After, resets, trickling bodies,
 * a host of 404s), one job through the built command line.
 *
 * @module-tag e2e
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { startSimulatedWeb, type SimWeb } from '../bench/sim-web.js';
import { runCli } from './helpers/cli.js';
import type { ResultsDocument } from '../src/types.js';

const PER_HOST = 3;
let web: SimWeb;
let folder: string;

beforeAll(async () => {
  web = await startSimulatedWeb({ hosts: 40, seed: 7 });
  folder = mkdtempSync(join(tmpdir(), 'imgjob-web-'));
});
afterAll(async () => {
  await web.close();
  rmSync(folder, { recursive: true, force: true });
});

// That a 429 pauses every store on its host is HostBoard's test (download-hosts):
// here, on a shared machine, a request that arrives inside a host's window may
// have been sent before its 429 reached the client, so only an image's own
// retry is certain to be early when it arrives inside its window.
it('on a web of failing and rate-limiting hosts: every image that can succeed does, no image retried inside its Retry-After window, never more than --per-host on a host', async () => {
  let seed = 11;
  const next = (): number => (seed = (seed * 48_271) % 2_147_483_647);
  const placed: { host: number; store: number; url: string }[] = [];
  const visits = Array.from({ length: 60 }, (_, store) => ({
    store_id: `S${store}`,
    image_url: Array.from({ length: 4 }, (_, slot) => {
      const host = next() % web.hosts.length;
      const address = web.hosts[host]?.address ?? '';
      const url = `http://${address}:${web.port}/img/${store * 4 + slot}.png`;
      placed.push({ host, store, url });
      return url;
    }),
  }));
  const manifest = join(folder, 'web.json');
  writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
  const out = join(folder, 'web.results.json');
  const { stderr } = await runCli([
    'run',
    manifest,
    '-o',
    out,
    '--gpu-delay',
    '0',
    '-c',
    '64',
    '--threads',
    '1',
    '--per-host',
    String(PER_HOST),
    '--retries',
    '4',
    '--retry-wait',
    '50',
  ]);
  const document = JSON.parse(readFileSync(out, 'utf8')) as ResultsDocument;
  const status = new Map(
    document.stores.flatMap((store) => store.images).map((image) => [image.url, image.status]),
  );
  // An image can succeed unless it, or an earlier one of its store, is on the host of 404s.
  const stopped = new Set<number>();
  const succeedable = placed.filter(({ host, store }) => {
    if (web.hosts[host]?.kind === 'missing') stopped.add(store);
    return !stopped.has(store);
  });
  const done = succeedable.filter(({ url }) => status.get(url) === 'done');
  const failed = document.stores
    .flatMap((store) => store.images)
    .flatMap((image) =>
      image.status === 'failed' && succeedable.some(({ url }) => url === image.url)
        ? [`${image.url} ${image.code}: ${image.error}`]
        : [],
    );
  expect(
    done.length / succeedable.length,
    `${failed.join('\n')}\n${stderr}`,
  ).toBeGreaterThanOrEqual(0.995);
  expect(stopped.size).toBeGreaterThan(0);
  const stats = web.stats();
  // The job met every kind of host: the figures below mean something.
  expect(stats.answered429).toBeGreaterThan(0);
  expect(stats.answered503).toBeGreaterThan(0);
  expect(stats.retriedInsideWindow).toBe(0);
  expect(stats.maxInFlight).toBeLessThanOrEqual(PER_HOST);
  expect(stats.maxInFlight).toBeGreaterThan(1);
  // The results file counts each host's requests and 429/503 answers.
  const hosts = document.network?.hosts ?? [];
  expect(hosts.length).toBeGreaterThan(0);
  expect(hosts.length).toBeLessThanOrEqual(20);
  const counted429 = hosts.reduce((sum, host) => sum + host.status_429, 0);
  expect(counted429).toBeGreaterThan(0);
});
