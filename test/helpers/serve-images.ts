/**
 * A tiny image server for the serve tests that records every request path,
 * so a test can tell exactly which images were downloaded, and when.
 *
 * | route | answer |
 * | --- | --- |
 * | `/img/<anything>.png` | the 50×30 fixture PNG |
 * | `/hold/<key>/<anything>.png` | the PNG once the test calls `release(key)` |
 * | `/redirect?to=<url>` | 302 to `to` |
 * | anything else | 404 |
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const PNG = readFileSync(new URL('../../fixtures/images/image.png', import.meta.url));
/** What the fixture PNG measures. */
export const PNG_SIZE = { width: 50, height: 30, perimeter: 160 } as const;

export type ImageServer = {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  url(path: string): string;
  /** Request paths (with query), in arrival order. */
  readonly requests: readonly string[];
  /** Lets every request held on `/hold/<key>/…` through, now and later. */
  release(key: string): void;
  /** Forgets the recorded requests. */
  reset(): void;
  close(): Promise<void>;
};

export async function startImageServer(host = '127.0.0.1'): Promise<ImageServer> {
  const requests: string[] = [];
  const released = new Set<string>();
  const held = new Map<string, (() => void)[]>();
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const url = new URL(path, 'http://x');
    const png = (): void => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length }).end(PNG);
    };
    const hold = /^\/hold\/([^/]+)\/.+\.png$/.exec(url.pathname);
    if (url.pathname.startsWith('/img/') && url.pathname.endsWith('.png')) png();
    else if (hold?.[1] !== undefined) {
      const key = hold[1];
      if (released.has(key)) png();
      else held.set(key, [...(held.get(key) ?? []), png]);
    } else if (url.pathname === '/redirect') {
      res.writeHead(302, { location: url.searchParams.get('to') ?? '/' }).end();
    } else res.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host}:${port}`;
  return {
    origin,
    url: (path) => `${origin}${path}`,
    requests,
    release(key) {
      released.add(key);
      for (const send of held.get(key) ?? []) send();
      held.delete(key);
    },
    reset() {
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
