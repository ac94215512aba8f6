// @module-tag e2e
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.js';
import { runJobHere, runMain, withEnv } from './helpers/main.js';
import { startForwardProxy, type ForwardProxy } from './helpers/forward-proxy.js';
import {
  selfSigned,
  startImageOrigin,
  type ImageOrigin,
  type SelfSigned,
} from './helpers/image-origin.js';
import { createAddressGuard, guardedConnector } from '../src/download/address-guard.js';
import { createDownloader } from '../src/download/downloader.js';
import type { ResultsDocument } from '../src/types.js';

const IMAGES = 12;
let folder: string;
let tls: SelfSigned & { dispose(): void };
let http: ImageOrigin;
let https: ImageOrigin;
let proxy: ForwardProxy;

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'imgjob-proxy-'));
  tls = selfSigned();
  [http, https] = await Promise.all([startImageOrigin(), startImageOrigin(tls)]);
});
beforeEach(async () => {
  proxy = await startForwardProxy();
});
afterEach(async () => {
  await proxy.close();
});
afterAll(async () => {
  await Promise.all([http.close(), https.close()]);
  tls.dispose();
  rmSync(folder, { recursive: true, force: true });
});

type Job = { code: number | null; output: string; document: ResultsDocument; ports: number[] };

/**
 * Runs a job of 3 stores × 4 images on `origin` with `env`; what the origin saw of it.
 * An https job runs in a process of its own: it trusts the test certificate through
 * NODE_EXTRA_CA_CERTS, which Node reads only at start. An http job runs here, through
 * main(), with `env` over this process's environment for the run's length.
 */
async function runJob(
  origin: ImageOrigin,
  env: Record<string, string>,
  args: readonly string[] = [],
): Promise<Job> {
  const before = origin.clientPorts.length;
  const visits = [0, 1, 2].map((store) => ({
    store_id: `S${store}`,
    image_url: [0, 1, 2, 3].map((image) => `${origin.origin}/img/${store}/${image}.png`),
  }));
  const manifest = join(folder, `job-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(manifest, JSON.stringify({ count: visits.length, visits }));
  const out = `${manifest}.results.json`;
  const run = ['run', manifest, '-o', out, '--gpu-delay', '0', '--retries', '0', ...args];
  // No proxy of the machine running the tests counts.
  const jobEnv = { ...Object.fromEntries(PROXY_VARIABLES.map((name) => [name, ''])), ...env };
  const { code, stdout, stderr } = origin.origin.startsWith('https:')
    ? await runCli(run, { env: { NODE_EXTRA_CA_CERTS: tls.certPath, ...jobEnv } })
    : await withEnv(jobEnv, () => runJobHere(run));
  return {
    code,
    output: stdout + stderr,
    document: JSON.parse(readFileSync(out, 'utf8')) as ResultsDocument,
    ports: origin.clientPorts.slice(before),
  };
}

const PROXY_VARIABLES = [
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];

function expectAllDone(job: Job): void {
  expect(job.code, job.output).toBe(0);
  expect(job.document.counts.done).toBe(IMAGES);
  expect(job.ports).toHaveLength(IMAGES);
}

/** Every request the origin received came over a connection the proxy opened. */
function expectAllThroughProxy(job: Job): void {
  expect(job.ports.every((port) => proxy.upstreamPorts.has(port))).toBe(true);
}

describe('through a forward proxy', () => {
  it('sends every http request to HTTP_PROXY, in absolute-URI form', async () => {
    const job = await runJob(http, { HTTP_PROXY: proxy.url });
    expectAllDone(job);
    expectAllThroughProxy(job);
    const gets = proxy.seen.filter((seen) => seen.method === 'GET');
    expect(gets).toHaveLength(IMAGES);
    expect(gets.every((seen) => seen.target.startsWith(`${http.origin}/img/`))).toBe(true);
  });

  it('tunnels every https request through CONNECT to HTTPS_PROXY', async () => {
    const job = await runJob(https, { HTTPS_PROXY: proxy.url });
    expectAllDone(job);
    expectAllThroughProxy(job);
    expect(proxy.seen.length).toBeGreaterThan(0);
    const host = new URL(https.origin).host;
    expect(proxy.seen.every((seen) => seen.method === 'CONNECT' && seen.target === host)).toBe(
      true,
    );
  });

  it('reads the lowercase variables, before the uppercase ones', async () => {
    const dead = 'http://127.0.0.1:9'; // nothing listens on the discard port
    const plain = await runJob(http, { http_proxy: proxy.url, HTTP_PROXY: dead });
    expectAllDone(plain);
    expectAllThroughProxy(plain);
    const tunnelled = await runJob(https, { https_proxy: proxy.url, HTTPS_PROXY: dead });
    expectAllDone(tunnelled);
    expectAllThroughProxy(tunnelled);
  });

  it('goes around the proxy for the hosts of NO_PROXY, and of --no-proxy over it', async () => {
    const bypassed = await runJob(http, { HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1' });
    expectAllDone(bypassed);
    const lower = await runJob(https, {
      https_proxy: proxy.url,
      no_proxy: 'example.com, 127.0.0.1',
    });
    expectAllDone(lower);
    expect(proxy.seen).toHaveLength(0);
    const flagged = await runJob(http, { HTTP_PROXY: proxy.url, NO_PROXY: 'example.com' }, [
      '--no-proxy',
      `127.0.0.1:${new URL(http.origin).port}`,
    ]);
    expectAllDone(flagged);
    expect(proxy.seen).toHaveLength(0);
  });

  it('takes --proxy over the environment, sends its credentials to the proxy and prints them nowhere', async () => {
    const withCredentials = proxy.url.replace('//', '//ann:s3cret@');
    const job = await runJob(http, { HTTP_PROXY: 'http://127.0.0.1:9' }, [
      '--proxy',
      withCredentials,
    ]);
    expectAllDone(job);
    expectAllThroughProxy(job);
    const authorization = `Basic ${Buffer.from('ann:s3cret').toString('base64')}`;
    expect(proxy.seen.every((seen) => seen.headers['proxy-authorization'] === authorization)).toBe(
      true,
    );
    // A proxy that is not there: the failures name no password.
    const down = await runJob(http, {}, ['--proxy', 'http://ann:s3cret@127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.output + JSON.stringify(down.document)).not.toContain('s3cret');
    // A usage error, before any download or environment: in this process.
    const bad = await runMain(['run', '-', '--proxy', 'ftp://ann:s3cret@proxy'], { stdin: '{}' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--proxy: expected an http:// or https:// proxy');
    expect(bad.stderr).not.toContain('s3cret');
  });
});

describe('the address guard of serve, behind a proxy', () => {
  /** A downloader as serve builds it, with every download through the proxy. */
  function guardedThroughProxy(allow: readonly string[]): ReturnType<typeof createDownloader> {
    return createDownloader({
      timeoutMs: 5000,
      maxBytes: 1_000_000,
      retries: 0,
      headerOnly: false,
      perHost: 2,
      proxy: { httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: '' },
      connect: guardedConnector(createAddressGuard({ allow }), {
        // A name that leads inside, and one that leads to the test's origin.
        lookup: (hostname, _options, callback) => {
          const address = hostname === 'inside.test' ? '10.0.0.7' : '127.0.0.1';
          callback(null, [{ address, family: 4 }]);
        },
      }),
    });
  }

  it('refuses a private target before the request reaches the proxy, by address and by name', async () => {
    const downloader = guardedThroughProxy([]);
    try {
      const port = new URL(http.origin).port;
      for (const url of [`${http.origin}/img/a.png`, `http://inside.test:${port}/img/b.png`]) {
        await expect(downloader.fetchImage(url)).rejects.toMatchObject({
          code: 'E_ADDRESS_REFUSED',
        });
      }
      expect(proxy.seen).toHaveLength(0);
    } finally {
      await downloader.close();
    }
  });

  it('fails an image with one clear error when the proxy wants credentials (407), for http and https', async () => {
    const { createServer } = await import('node:http');
    const strict = createServer((_req, res) => {
      res.writeHead(407, { 'proxy-authenticate': 'Basic realm="x"' }).end();
    });
    strict.on('connect', (_req, socket: import('node:net').Socket) => {
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
    });
    await new Promise<void>((resolve) => strict.listen(0, '127.0.0.1', resolve));
    const address = strict.address() as import('node:net').AddressInfo;
    const proxyUrl = `http://127.0.0.1:${address.port}`;
    const downloader = createDownloader({
      timeoutMs: 5000,
      maxBytes: 1_000_000,
      retries: 2,
      headerOnly: false,
      perHost: 2,
      proxy: { httpProxy: proxyUrl, httpsProxy: proxyUrl, noProxy: '' },
    });
    try {
      for (const origin of [http.origin, https.origin]) {
        await expect(downloader.fetchImage(`${origin}/img/d.png`)).rejects.toMatchObject({
          code: 'E_NETWORK',
          attempts: 1,
          message: expect.stringMatching(/^the proxy refused the request: Proxy .*407/) as string,
        });
      }
    } finally {
      await downloader.close();
      strict.close();
    }
  });

  it('sends an allowed target through the proxy', async () => {
    const downloader = guardedThroughProxy(['127.0.0.1']);
    try {
      await expect(downloader.fetchImage(`${http.origin}/img/c.png`)).resolves.toMatchObject({
        width: expect.any(Number) as number,
      });
      expect(proxy.seen.map((seen) => seen.target)).toEqual([`${http.origin}/img/c.png`]);
    } finally {
      await downloader.close();
    }
  });
});
