// @ts-check
/**
 * `npm run bench -- --only web`: imgjob on a simulated web (sim-web.js) of
 * 1,000 hosts (`--quick`: 200) named `h<i>.web.test`, resolved by the
 * simulated DNS server, with transient 503s, rate limits, resets, trickling
 * bodies and missing images. Reports the success rate (of the images that
 * can succeed), the most requests in flight on one host, the requests that
 * arrived inside a Retry-After window, the DNS queries and the time.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startSimulatedDns, startSimulatedWeb } from './sim-web.js';
import { mulberry32 } from './workloads.js';

const CLI = fileURLToPath(new URL('../bin/imgjob.js', import.meta.url));
const PER_HOST = 4;
const RETRIES = 4;
/** DNS answers live this long: the job takes less, so each name is looked up once. */
const TTL_SECONDS = 300;

/**
 * @param {{ quick: boolean }} options
 * @returns {Promise<number>} the exit code
 */
export async function runWebBench({ quick }) {
  const hostCount = quick ? 200 : 1000;
  const stores = quick ? 400 : 2000;
  const imagesPerStore = 5;
  const [web, dns] = await Promise.all([
    startSimulatedWeb({ hosts: hostCount, seed: 18 }),
    startSimulatedDns({ ttl: TTL_SECONDS }),
  ]);
  const scratch = await mkdtemp(join(tmpdir(), 'imgjob-web-'));
  try {
    const random = mulberry32(2026);
    /** @type {{ host: number, image: number, store: number }[]} */
    const placed = [];
    const visits = Array.from({ length: stores }, (_, store) => ({
      store_id: `W${store}`,
      image_url: Array.from({ length: imagesPerStore }, (_, slot) => {
        const host = Math.floor(random() * hostCount);
        const image = store * imagesPerStore + slot;
        placed.push({ host, image, store });
        return `http://h${host}.web.test:${web.port}/img/${image}.png`;
      }),
    }));
    const manifest = join(scratch, 'web.json');
    await writeFile(manifest, JSON.stringify({ count: visits.length, visits }));
    const out = join(scratch, 'web.results.json');
    const args = [
      'run',
      manifest,
      '-o',
      out,
      '--force',
      '--gpu-delay',
      '0',
      '-c',
      '256',
      '--per-host',
      String(PER_HOST),
      '--retries',
      String(RETRIES),
      '--timeout',
      '10000',
    ];
    console.error(
      `web: ${stores * imagesPerStore} images in ${stores} stores on ${hostCount} hosts (${kinds(web.hosts)}); imgjob ${args.slice(3).join(' ')}`,
    );
    const started = performance.now();
    const code = await run(args, { IMGJOB_TEST_DNS_SERVERS: dns.server });
    const wallMs = performance.now() - started;
    /** @type {import('../src/types.js').ResultsDocument} */
    const document = JSON.parse(await readFile(out, 'utf8'));
    const images = document.stores.flatMap((store) => store.images);
    // An image can succeed unless it, or an earlier one of its store (which
    // then stops the store), is on a host that has none.
    const stopped = new Set();
    const succeedable = placed.filter(({ host, store }) => {
      if (web.hosts[host]?.kind === 'missing') stopped.add(store);
      return !stopped.has(store);
    });
    const byUrl = new Map(images.map((image) => [image.url, image.status]));
    const done = succeedable.filter(
      ({ host, image }) =>
        byUrl.get(`http://h${host}.web.test:${web.port}/img/${image}.png`) === 'done',
    ).length;
    const stats = web.stats();
    const usedHosts = new Set(placed.map(({ host }) => host)).size;
    const figures = {
      images: images.length,
      succeedable: succeedable.length,
      done,
      successRate: done / succeedable.length,
      exitCode: code,
      requests: stats.requests,
      answered429: stats.answered429,
      answered503: stats.answered503,
      maxInFlightOnOneHost: stats.maxInFlight,
      perHost: PER_HOST,
      insideRetryAfter: stats.insideRetryAfter,
      insideRetryAfterNoGrace: stats.insideRetryAfterRaw,
      dnsLookups: dns.lookups(),
      dnsQueries: dns.queries(),
      hostsUsed: usedHosts,
      seconds: Number((wallMs / 1000).toFixed(2)),
    };
    console.log(
      [
        `success: ${done}/${succeedable.length} of the images that can succeed (${(figures.successRate * 100).toFixed(2)}%; needed ≥ 99.5%)`,
        `most in flight on one host: ${stats.maxInFlight} (--per-host ${PER_HOST})`,
        `requests inside a Retry-After window: ${stats.insideRetryAfter} (${stats.insideRetryAfterRaw} counting those sent before the 429 arrived)`,
        `DNS lookups: ${figures.dnsLookups} for ${usedHosts} names, TTL ${TTL_SECONDS} s (${figures.dnsQueries} queries with AAAA, search domains and retransmissions)`,
        `requests: ${stats.requests}, 429s: ${stats.answered429}, 503s: ${stats.answered503}`,
        `time: ${figures.seconds} s (imgjob exit ${code})`,
      ].join('\n'),
    );
    const ok =
      figures.successRate >= 0.995 && stats.insideRetryAfter === 0 && stats.maxInFlight <= PER_HOST;
    return ok ? 0 : 1;
  } finally {
    await Promise.all([web.close(), dns.close()]);
    if (process.env.IMGJOB_WEB_KEEP) console.error(`kept ${scratch}`);
    else await rm(scratch, { recursive: true, force: true });
  }
}

/** @param {readonly import('./sim-web.js').SimHost[]} hosts */
function kinds(hosts) {
  /** @type {Record<string, number>} */
  const counts = {};
  for (const host of hosts) counts[host.kind] = (counts[host.kind] ?? 0) + 1;
  return Object.entries(counts)
    .map(([kind, count]) => `${count} ${kind}`)
    .join(', ');
}

/**
 * @param {string[]} args
 * @param {Record<string, string>} env
 * @returns {Promise<number | null>}
 */
function run(args, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.on('exit', (code) => resolve(code));
  });
}
