/**
 * `serve` on a network and under browsers (issue 13 §5): requests from web
 * pages (Content-Type, Host, Origin), malformed requests, aborted uploads,
 * slow clients and the connection cap.
 */
import { request, STATUS_CODES, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { ApiRequest, ApiResponse } from '../src/serve/api.js';
import { ClientGoneError, createHttpServer, listen } from '../src/serve/http.js';
import { startServer, type RunningServer } from '../src/serve/server.js';
import { SERVE_DEFAULTS } from '../src/serve/defaults.js';
import { call } from './helpers/serve-client.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-http-'));
let server: RunningServer;
let base: string;
let port: string;

const OPTIONS = serveOptions({ concurrency: 2 });
const EMPTY_JOB = '{"count": 0, "visits": []}';

beforeAll(async () => {
  server = await startServer({
    port: 0,
    dbPath: join(folder, 'http.db'),
    options: OPTIONS,
    allowedHosts: ['imgjob.internal'],
    allowedOrigins: ['http://dash.example:3000'],
  });
  base = server.url;
  port = new URL(base).port;
});

afterAll(async () => {
  await server.close();
  rmSync(folder, { recursive: true, force: true });
});

type RawReply = { status: number; headers: Record<string, unknown>; body: unknown };

/** A request with any headers (fetch will not set Host or Origin). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text === '' ? undefined : JSON.parse(text),
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('requests from web pages', () => {
  it.each([
    ['text/plain;charset=UTF-8', '"text/plain;charset=UTF-8"'],
    ['application/x-www-form-urlencoded', '"application/x-www-form-urlencoded"'],
    [undefined, 'none'],
  ])('a submit as %s gets 415 and no job', async (type, shown) => {
    const reply = await raw(
      'POST',
      '/api/submit/',
      type === undefined ? {} : { 'content-type': type },
      EMPTY_JOB,
    );
    expect(reply).toMatchObject({
      status: 415,
      body: { error: `expected Content-Type: application/json, got ${shown}` },
    });
    const jobs = await call(base, '/api/jobs');
    expect((jobs.body as { jobs: unknown[] }).jobs).toEqual([]);
  });

  it('a submit as application/json (with a charset) is taken', async () => {
    const reply = await raw(
      'POST',
      '/api/submit/',
      { 'content-type': 'Application/JSON; charset=utf-8' },
      EMPTY_JOB,
    );
    expect(reply.status).toBe(201);
  });

  it.each([
    ['an IP literal', '127.0.0.1'],
    ['localhost', 'localhost'],
    ['a *.localhost name', 'dash.localhost'],
    ['a name given with --allowed-host', 'imgjob.internal'],
    ['an IPv6 literal', '[::1]'],
  ])('accepts a Host that is %s', async (_name, host) => {
    const reply = await raw('GET', '/healthz', { host: `${host}:${port}` });
    expect(reply.status).toBe(200);
  });

  it('refuses any other Host (DNS rebinding) with 403 naming the flag', async () => {
    const reply = await raw('GET', '/api/jobs', { host: `rebind.attacker.example:${port}` });
    expect(reply).toMatchObject({
      status: 403,
      body: {
        error: `Host "rebind.attacker.example:${port}" is not a name of this server; start it with --allowed-host <name> to accept it`,
      },
    });
    const submit = await raw(
      'POST',
      '/api/submit/',
      { host: 'rebind.attacker.example', 'content-type': 'application/json' },
      EMPTY_JOB,
    );
    expect(submit.status).toBe(403);
  });

  it('refuses a cross-origin page, GET and POST alike', async () => {
    for (const [method, path] of [
      ['GET', '/api/jobs'],
      ['POST', '/api/submit/'],
    ] as const) {
      const reply = await raw(
        method,
        path,
        { origin: 'http://evil.example', 'content-type': 'application/json' },
        method === 'POST' ? EMPTY_JOB : undefined,
      );
      expect(reply).toMatchObject({
        status: 403,
        body: {
          error:
            'cross-origin request from http://evil.example refused; start the server with --allow-origin http://evil.example to allow it',
        },
      });
      expect(reply.headers['access-control-allow-origin']).toBeUndefined();
    }
    const nullOrigin = await raw('GET', '/api/jobs', { origin: 'null' });
    expect(nullOrigin.status).toBe(403);
  });

  it("lets a page of the server's own origin GET and POST (a dashboard it serves)", async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const origin = `http://${host}`;
      const get = await raw('GET', '/api/jobs', { host, origin });
      expect(get.status).toBe(200);
      const post = await raw(
        'POST',
        '/api/submit/',
        { host, origin, 'content-type': 'application/json' },
        EMPTY_JOB,
      );
      expect(post.status).toBe(201);
    }
  });

  it('answers an origin given with --allow-origin with CORS, preflight included', async () => {
    const origin = 'http://dash.example:3000';
    const preflight = await raw('OPTIONS', '/api/submit/', {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type',
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, HEAD, POST, DELETE',
      'access-control-allow-headers': 'content-type',
    });
    const post = await raw(
      'POST',
      '/api/submit/',
      { origin, 'content-type': 'application/json' },
      EMPTY_JOB,
    );
    expect(post.status).toBe(201);
    expect(post.headers['access-control-allow-origin']).toBe(origin);
  });
});

describe('bad and slow clients', () => {
  it('answers a malformed request line with a JSON 400, and logs nothing', async () => {
    const onError = vi.fn();
    const { url, close } = await bareServer(() => Promise.resolve({ status: 200, body: {} }), {
      onError,
    });
    try {
      const text = await rawExchange(url, 'GARBAGE / NOT-HTTP\r\n\r\n');
      expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(text).toContain('content-type: application/json; charset=utf-8');
      expect(text.split('\r\n\r\n')[1]).toBe('{"error":"malformed HTTP request"}\n');
      expect(onError).not.toHaveBeenCalled();
    } finally {
      await close();
    }
  });

  let targetServers = 0;
  it.each([
    ['GET http://[ HTTP/1.1', 400],
    ['GET http://a:b@[::1]:99999/ HTTP/1.1', 400],
    ['GET ftp://x/healthz HTTP/1.1', 400],
    // A valid path (empty segments), which no route has: never a host named by the path.
    ['GET // HTTP/1.1', 404],
    ['GET //healthz HTTP/1.1', 404],
    // Names Object.prototype holds, which a plain object would have "found".
    ['GET /assets/constructor HTTP/1.1', 404],
    ['GET /assets/__proto__ HTTP/1.1', 404],
    ['GET /assets/toString HTTP/1.1', 404],
    ['GET /assets/hasOwnProperty HTTP/1.1', 404],
  ])('answers `%s` with JSON %i, not 500, and logs nothing', async (line, status) => {
    const logged: string[] = [];
    const guarded = await startServer({
      port: 0,
      dbPath: join(folder, `target-${++targetServers}.db`),
      options: OPTIONS,
      log: (text) => logged.push(text),
    });
    try {
      const text = await rawExchange(
        guarded.url,
        `${line}\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n`,
      );
      expect(text.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`);
      expect(JSON.parse(text.split('\r\n\r\n')[1] ?? '')).toHaveProperty('error');
      expect(logged.filter((entry) => entry.includes('internal error'))).toEqual([]);
    } finally {
      await guarded.close();
    }
  });

  it('an upload the client aborts is not an internal error', async () => {
    const onError = vi.fn();
    let bodyError: (error: unknown) => void = () => undefined;
    const failed = new Promise<unknown>((resolve) => (bodyError = resolve));
    const api = async (request: ApiRequest): Promise<ApiResponse> => {
      try {
        await request.body();
      } catch (error) {
        bodyError(error);
        throw error;
      }
      return { status: 201, body: {} };
    };
    const { url, close } = await bareServer(api, { onError });
    try {
      const socket = await open(url);
      socket.write(
        'POST /api/submit/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
          'content-length: 1000\r\n\r\n{"count": ',
      );
      await vi.waitFor(() => {
        expect(socket.bytesWritten).toBeGreaterThan(0);
      });
      socket.destroy();
      expect(await failed).toBeInstanceOf(ClientGoneError);
      // answer() handles the rejection on the next turns; let them run.
      await new Promise((resolve) => setImmediate(resolve));
      expect(onError).not.toHaveBeenCalled();
    } finally {
      await close();
    }
  });

  it('cuts a slow-drip body at the request timeout with 408, long before 300 s', async () => {
    const { url, close } = await bareServer(
      async (request) => ({ status: 201, body: { got: (await request.body()).length } }),
      { limits: { requestTimeoutMs: 300, headersTimeoutMs: 300 } },
    );
    const socket = await open(url);
    const drip = setInterval(() => socket.write('x'), 20);
    try {
      socket.write(
        'POST /api/submit/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' +
          'content-length: 100000\r\n\r\n',
      );
      const started = performance.now();
      const text = await received(socket);
      expect(text).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(text).toContain('{"error":"the request took too long to arrive"}');
      expect(performance.now() - started).toBeLessThan(10_000);
    } finally {
      clearInterval(drip);
      socket.destroy();
      await close();
    }
  });

  it('closes connections past the cap at once', async () => {
    const { url, close } = await bareServer(() => Promise.resolve({ status: 200, body: {} }), {
      limits: { maxConnections: 2 },
    });
    const first = await open(url);
    const second = await open(url);
    try {
      const third = await open(url);
      const text = await received(third);
      expect(text).toBe('');
      // The first two still work.
      expect(
        await rawExchange(url, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', first),
      ).toMatch(/^HTTP\/1\.1 200 OK/);
    } finally {
      first.destroy();
      second.destroy();
      await close();
    }
  });

  it('sets documented timeouts and a connection cap by default', async () => {
    const { http, close } = await bareServer(() => Promise.resolve({ status: 200, body: {} }), {});
    try {
      expect(http.headersTimeout).toBe(SERVE_DEFAULTS.http.headersTimeoutMs);
      expect(http.requestTimeout).toBe(SERVE_DEFAULTS.http.requestTimeoutMs);
      expect(http.keepAliveTimeout).toBe(SERVE_DEFAULTS.http.keepAliveTimeoutMs);
      expect(http.maxConnections).toBe(SERVE_DEFAULTS.http.maxConnections);
      expect(http.requestTimeout).toBeLessThan(300_000);
    } finally {
      await close();
    }
  });
});

async function bareServer(
  api: (request: ApiRequest) => Promise<ApiResponse>,
  options: Partial<Parameters<typeof createHttpServer>[1]>,
): Promise<{ url: string; http: Server; close: () => Promise<void> }> {
  const http = createHttpServer(api, {
    maxBodyBytes: 1 << 20,
    onError: () => undefined,
    ...options,
  });
  const url = await listen(http, '127.0.0.1', 0);
  return {
    url,
    http,
    close: () =>
      new Promise((resolve) => {
        http.closeAllConnections();
        http.close(() => {
          resolve();
        });
      }),
  };
}

function open(url: string): Promise<Socket> {
  const { hostname, port: p } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(p), hostname, () => {
      resolve(socket);
    });
    socket.on('error', reject);
  });
}

/** Everything the server sends until it closes the connection. */
function received(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve(text);
    });
  });
}

async function rawExchange(url: string, bytes: string, socket?: Socket): Promise<string> {
  const connection = socket ?? (await open(url));
  const reply = received(connection);
  connection.write(bytes);
  return reply;
}
