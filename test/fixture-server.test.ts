import { readFile } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureServer, type FixtureServer } from '../scripts/fixture-server.js';

const root = fileURLToPath(new URL('../fixtures/', import.meta.url));
const png = await readFile(new URL('../fixtures/images/image.png', import.meta.url));

type Reply = { status: number; headers: IncomingHttpHeaders; body: Buffer };

/** A request whose path is sent exactly as written (fetch would normalise `..`). */
function send(
  origin: string,
  path: string,
  {
    method = 'GET',
    headers = {},
    agent,
  }: { method?: string; headers?: Record<string, string>; agent?: Agent } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${origin}/`, { method, path, headers, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startFixtureServer', () => {
  let server: FixtureServer;
  beforeAll(async () => {
    server = await startFixtureServer(root);
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on a free loopback port and reports its origin', () => {
    expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('serves a file whole with its type and length', async () => {
    const reply = await send(server.origin, '/images/image.png');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('image/png');
    expect(reply.headers['content-length']).toBe(String(png.length));
    expect(reply.headers['accept-ranges']).toBe('bytes');
    expect(reply.body.equals(png)).toBe(true);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const reply = await send(server.origin, '/images/image.png', { method: 'HEAD' });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-length']).toBe(String(png.length));
    expect(reply.body.length).toBe(0);
  });

  it.each([
    ['bytes=0-15', 0, 15],
    ['bytes=500-', 500, png.length - 1],
    ['bytes=-10', png.length - 10, png.length - 1],
    ['bytes=100-99999', 100, png.length - 1],
  ])('answers Range %s with 206 and exactly those bytes', async (range, start, end) => {
    const reply = await send(server.origin, '/images/image.png', { headers: { Range: range } });
    expect(reply.status).toBe(206);
    expect(reply.headers['content-range']).toBe(`bytes ${start}-${end}/${png.length}`);
    expect(reply.headers['content-length']).toBe(String(end - start + 1));
    expect(reply.body.equals(png.subarray(start, end + 1))).toBe(true);
  });

  it('answers a range that starts past the end with 416', async () => {
    const reply = await send(server.origin, '/images/image.png', {
      headers: { Range: `bytes=${png.length}-` },
    });
    expect(reply.status).toBe(416);
    expect(reply.headers['content-range']).toBe(`bytes */${png.length}`);
  });

  it('ignores a multi-part range and sends the whole file', async () => {
    const reply = await send(server.origin, '/images/image.png', {
      headers: { Range: 'bytes=0-1,4-5' },
    });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(png.length);
  });

  it.each(['/images/nope.jpg', '/images/', '/images'])('answers 404 for %s', async (path) => {
    expect((await send(server.origin, path)).status).toBe(404);
  });

  it.each([200, 404, 429, 500, 503])('answers /status/%i with that code', async (code) => {
    expect((await send(server.origin, `/status/${code}`)).status).toBe(code);
  });

  it.each(['/../package.json', '/images/..%2f..%2fpackage.json', '/%2e%2e/package.json'])(
    'refuses the path traversal %s',
    async (path) => {
      const reply = await send(server.origin, path);
      expect(reply.status).toBe(403);
      expect(reply.body.toString()).not.toContain('imgjob');
    },
  );

  it('refuses methods other than GET and HEAD', async () => {
    const reply = await send(server.origin, '/images/image.png', { method: 'POST' });
    expect(reply.status).toBe(405);
    expect(reply.headers.allow).toBe('GET, HEAD');
  });

  it('keeps connections alive between requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<Socket>();
    agent.on('free', (socket: Socket) => sockets.add(socket));
    await send(server.origin, '/images/image.png', { agent });
    await send(server.origin, '/images/image.gif', { agent });
    agent.destroy();
    expect(sockets.size).toBe(1);
  });
});

describe('FixtureServer.close', () => {
  it('ends idle keep-alive and half-sent requests at once, then refuses connections', async () => {
    const server = await startFixtureServer(root);
    const agent = new Agent({ keepAlive: true });
    const idle = new Promise<Socket>((resolve) => agent.once('free', resolve));
    await send(server.origin, '/images/image.png', { agent });
    const { port } = new URL(server.origin);
    const halfSent = connect(Number(port), '127.0.0.1');
    halfSent.on('error', () => {});
    await new Promise((resolve) => halfSent.once('connect', resolve));
    halfSent.write('GET /images/image.png HTTP/1.1\r\nHost: x\r\n');

    const ended = Promise.all(
      [await idle, halfSent].map(
        (socket) => new Promise((resolve) => socket.once('close', resolve)),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const tooSlow = new Promise((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error('close() hung on open connections'));
      }, 2000);
    });
    await Promise.race([Promise.all([server.close(), ended]), tooSlow]);
    clearTimeout(timer);
    agent.destroy();

    await expect(send(server.origin, '/images/image.png')).rejects.toThrow(/ECONNREFUSED/);
    await server.close(); // a second close is harmless
  });
});
