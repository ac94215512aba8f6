import { mkdtempSync, rmSync } from 'node:fs';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  AddressRefusedError,
  classifyAddress,
  createAddressGuard,
  guardedConnector,
  guardedLookup,
} from '../src/download/address-guard.js';
import { createDownloader } from '../src/download/downloader.js';
import { DownloadError } from '../src/utils/errors.js';
import { startServer, type RunningServer, type ServeConfig } from '../src/serve/server.js';
import { finished, submitOk, waitForJob } from './helpers/serve-client.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { serveOptions } from './helpers/serve-options.js';

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'cloud metadata'],
    ['169.254.170.2', 'cloud metadata'],
    ['169.254.1.1', 'link-local'],
    ['100.64.0.1', 'CGNAT (shared)'],
    ['100.127.255.255', 'CGNAT (shared)'],
    ['100.100.100.200', 'cloud metadata'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['198.18.0.1', 'reserved'], // benchmarking, in ipaddr.js's reserved list,
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd12:3456::1', 'unique-local'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:a9fe:a9fe', 'cloud metadata'],
    ['::ffff:10.1.2.3', 'private'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['2002:c0a8:0101::1', 'private'],
    ['not an address', 'invalid'],
  ])('%s is %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.32.0.1',
    '100.128.0.1',
    '169.253.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2002:0808:0808::1',
  ])('%s is public', (address) => {
    expect(classifyAddress(address)).toBeUndefined();
  });
});

describe('createAddressGuard', () => {
  it('names the kind of a refused address, and lets public ones and the allowed ones through', () => {
    const guard = createAddressGuard({ allow: ['127.0.0.1'] });
    expect(guard('10.0.0.1', 4)).toBe('a private address');
    expect(guard('::1', 6)).toBe('a loopback address');
    expect(guard('fe80::1', 6)).toBe('a link-local address');
    expect(guard('127.0.0.1', 4)).toBeUndefined();
    expect(guard('8.8.8.8', 4)).toBeUndefined();
  });

  it('allows everything with allowPrivate', () => {
    const guard = createAddressGuard({ allowPrivate: true });
    expect(guard('169.254.169.254', 4)).toBeUndefined();
  });
});

describe('guardedLookup', () => {
  const fakeDns =
    (answers: Record<string, LookupAddress[]>): LookupFunction =>
    (hostname, _options, callback) => {
      callback(null, answers[hostname] ?? []);
    };
  const lookup = guardedLookup(
    createAddressGuard(),
    fakeDns({
      mixed: [
        { address: '10.0.0.1', family: 4 },
        { address: '93.184.215.14', family: 4 },
      ],
      inside: [{ address: '169.254.169.254', family: 4 }],
    }),
  );
  const resolve = (host: string, all: boolean) =>
    new Promise<{ error: Error | null; found: unknown }>((done) => {
      lookup(host, { all }, (error, found) => {
        done({ error, found });
      });
    });

  it('hands back only the allowed addresses, in the form asked for', async () => {
    expect((await resolve('mixed', true)).found).toEqual([{ address: '93.184.215.14', family: 4 }]);
    expect((await resolve('mixed', false)).found).toBe('93.184.215.14');
  });

  it('refuses a name with no allowed address; what it resolved to is kept for the log only', async () => {
    const { error } = await resolve('inside', true);
    expect(error).toBeInstanceOf(AddressRefusedError);
    expect(error?.message).toBe(
      'refused: inside resolves to a private address; start the server with --allow-private to allow it',
    );
    expect((error as AddressRefusedError).detail).toBe(
      'inside resolves to 169.254.169.254, a cloud metadata address',
    );
  });
});

describe('the guarded downloader', () => {
  let inside: FaultServer;
  let outside: FaultServer;
  beforeAll(async () => {
    // `outside` stands for the internet: the one address the guard lets through.
    outside = await startFaultServer();
    inside = await startFaultServer({ host: '127.0.0.2' });
  });
  afterAll(async () => {
    await Promise.all([inside.close(), outside.close()]);
  });

  const downloader = () =>
    createDownloader({
      timeoutMs: 5000,
      maxBytes: 1024 * 1024,
      retries: 3,
      retryBaseMs: 1,
      headerOnly: false,
      perHost: 4,
      connect: guardedConnector(createAddressGuard({ allow: ['127.0.0.1'] }), {
        lookup: ((
          host: string,
          options: { all?: boolean },
          callback: (...args: unknown[]) => void,
        ) => {
          const address = host === 'inside.test' ? '127.0.0.2' : '127.0.0.1';
          if (options.all) callback(null, [{ address, family: 4 }]);
          else callback(null, address, 4);
        }) as LookupFunction,
      }),
    });

  it.each([
    [
      'an IP literal',
      () => `${inside.origin}/png/a.png`,
      'refused: 127.0.0.2 is a loopback address',
    ],
    [
      'a redirect to an IP literal',
      () => outside.url(`/redirect-to?location=${inside.url('/png/b.png')}`),
      'refused: 127.0.0.2 is a loopback address',
    ],
    [
      'a redirect to a name that resolves inside',
      () =>
        outside.url(
          `/redirect-to?location=http://inside.test:${new URL(inside.origin).port}/png/c.png`,
        ),
      'refused: inside.test resolves to a private address',
    ],
    [
      'a redirect to the metadata address',
      () => outside.url('/redirect-to?location=http://169.254.169.254/latest/meta-data/'),
      'refused: 169.254.169.254 is a cloud metadata address',
    ],
  ])('refuses %s before connecting, at once and without retries', async (_name, url, message) => {
    const download = downloader();
    try {
      const error = await download.fetchImage(url()).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      // Final after one attempt: withRetries hands it on as a plain DownloadError.
      expect(error).toBeInstanceOf(DownloadError);
      expect(error).toMatchObject({
        code: 'E_ADDRESS_REFUSED',
        attempts: 1,
        message: `${message}; start the server with --allow-private to allow it`,
      });
      expect(inside.requests).toEqual([]);
    } finally {
      await download.close();
    }
  });

  it('follows a redirect between allowed addresses as usual', async () => {
    const download = downloader();
    try {
      const measured = await download.fetchImage(
        outside.url(`/redirect-to?location=${outside.url('/png/d.png')}`),
      );
      expect(measured).toMatchObject({ width: 50, height: 30 });
    } finally {
      await download.close();
    }
  });
});

describe('imgjob serve, safe by default', () => {
  const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-ssrf-'));
  let images: FaultServer;
  beforeAll(async () => {
    images = await startFaultServer();
  });
  afterAll(async () => {
    await images.close();
    rmSync(folder, { recursive: true, force: true });
  });

  const serve = (extra: Partial<ServeConfig> = {}): Promise<RunningServer> =>
    startServer({
      port: 0,
      dbPath: join(folder, `${Math.random().toString(36).slice(2)}.db`),
      options: serveOptions({ concurrency: 8, retries: 2, perHost: 4 }),
      ...extra,
    });

  it('fails every image on a loopback, private, link-local or metadata address, and nothing reaches them', async () => {
    const log: string[] = [];
    const server = await serve({ log: (line) => log.push(line) });
    try {
      const port = new URL(images.origin).port;
      const urls = [
        images.url('/png/1.png'),
        `http://localhost:${port}/img/2.png`,
        `http://[::1]:${port}/img/3.png`,
        `http://[::ffff:127.0.0.1]:${port}/img/4.png`,
        'http://10.20.30.40/img/5.png',
        'http://169.254.169.254/latest/meta-data/',
        'http://100.64.1.1/img/7.png',
        'http://0.0.0.0/img/8.png',
        'http://2130706433/img/9.png', // 127.0.0.1, as a number
      ];
      const id = await submitOk(server.url, {
        count: urls.length,
        visits: urls.map((url, index) => ({ store_id: `S${index}`, image_url: [url] })),
      });
      const document = await waitForJob(server.url, id, finished);
      expect(document.status).toBe('failed');
      const errors = document.stores.map((store) => store.images[0]);
      for (const image of errors) {
        expect(image).toMatchObject({ status: 'failed', code: 'E_ADDRESS_REFUSED', attempts: 1 });
        expect(image && 'error' in image ? image.error : '').toMatch(
          /^refused: .+ (is an? [\w ()-]+|resolves to a private) address; start the server with --allow-private to allow it$/,
        );
      }
      // A name's address is not told to the client, only to the server's log.
      expect(errors[1]).toMatchObject({
        error:
          'refused: localhost resolves to a private address; start the server with --allow-private to allow it',
      });
      expect(log).toContainEqual(
        expect.stringMatching(
          /^warn: refused a connection: localhost resolves to (127\.0\.0\.1|::1), a loopback address$/,
        ),
      );
      expect(errors[0]).toMatchObject({
        error:
          'refused: 127.0.0.1 is a loopback address; start the server with --allow-private to allow it',
      });
      expect(errors[5]).toMatchObject({
        error:
          'refused: 169.254.169.254 is a cloud metadata address; start the server with --allow-private to allow it',
      });
      expect(images.requests).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('fetches the same URLs with allowPrivate', async () => {
    const server = await serve({ allowPrivate: true });
    try {
      const id = await submitOk(server.url, {
        count: 1,
        visits: [{ store_id: 'S1', image_url: [images.url('/png/ok.png')] }],
      });
      const document = await waitForJob(server.url, id, finished);
      expect(document.status).toBe('completed');
      expect(images.requests.map((request) => request.path)).toEqual(['/png/ok.png']);
    } finally {
      await server.close();
    }
  });
});
