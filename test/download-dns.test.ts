import { afterAll, beforeAll, expect, it } from 'vitest';

import { hostAddress, startSimulatedWeb, type SimWeb } from '../bench/sim-web.js';
import { createDownloader } from '../src/download/downloader.js';
import type { Resolved } from '../src/download/dns-cache.js';

let web: SimWeb;

beforeAll(async () => {
  web = await startSimulatedWeb({ hosts: 100, plain: true });
});
afterAll(async () => {
  await web.close();
});

it('looks each host up at most once per TTL: 10,000 images on 100 hosts', async () => {
  const lookups = new Map<string, number>();
  const downloader = createDownloader({
    timeoutMs: 10_000,
    maxBytes: 1_000_000,
    retries: 2,
    headerOnly: false,
    perHost: 4,
    resolve: (hostname): Promise<Resolved> => {
      lookups.set(hostname, (lookups.get(hostname) ?? 0) + 1);
      const index = /^h(\d+)\.web\.test$/.exec(hostname)?.[1];
      if (index === undefined) return Promise.reject(new Error(`ENOTFOUND ${hostname}`));
      return Promise.resolve({
        addresses: [{ address: hostAddress(Number(index)), family: 4 }],
        ttlMs: 300_000,
      });
    },
  });
  try {
    const urls = Array.from(
      { length: 10_000 },
      (_, image) => `http://h${image % 100}.web.test:${web.port}/img/${image}.png`,
    );
    let next = 0;
    let done = 0;
    // 400 downloads at a time: every host's connections busy at once.
    await Promise.all(
      Array.from({ length: 400 }, async () => {
        while (next < urls.length) {
          const url = urls[next++] ?? '';
          await downloader.fetchImage(url);
          done++;
        }
      }),
    );
    expect(done).toBe(10_000);
    expect(lookups.size).toBe(100);
    expect(Math.max(...lookups.values())).toBe(1);
    expect(downloader.network().dnsLookups).toBe(100);
    expect(web.stats().maxInFlight).toBeLessThanOrEqual(4);
  } finally {
    await downloader.close();
  }
}, 30_000);
