/**
 * The event streams' own budget (issue 19 §1): a cap per client address and
 * in total, 429 with Retry-After past it, and an age limit, so that one
 * client opening a thousand streams cannot take the connections the API and
 * /healthz need.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServer, type RunningServer, type ServeConfig } from '../src/serve/server.js';
import { SERVE_DEFAULTS } from '../src/serve/defaults.js';
import { call, submitOk } from './helpers/serve-client.js';
import { serveOptions } from './helpers/serve-options.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-streams-'));
let servers = 0;

function serve(dashboard: ServeConfig['dashboard'] = {}): Promise<RunningServer> {
  return startServer({
    port: 0,
    dbPath: join(folder, `${++servers}.db`),
    options: serveOptions({ concurrency: 2 }),
    dashboard: { heartbeatMs: 60_000, ...dashboard },
  });
}

afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

type Opened = { readonly status: number; readonly head: string; readonly socket: Socket };

/** `GET /api/events` on a connection of its own (from `localAddress`); resolves with the answer's head. */
function openStream(
  base: string,
  localAddress = '127.0.0.1',
  path = '/api/events',
): Promise<Opened> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), localAddress }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\n\r\n`);
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const end = text.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.removeAllListeners('data');
      const head = text.slice(0, end);
      resolve({ status: Number(head.split(' ')[1]), head, socket });
    });
    socket.on('error', reject);
  });
}

/** Resolves when the server has closed the connection. */
function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readableEnded || socket.destroyed) resolve();
    socket.on('close', () => {
      resolve();
    });
    socket.resume();
  });
}

/** A request's answer and how long it took. */
async function timed(base: string, path: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const reply = await call(base, path);
  return { status: reply.status, ms: performance.now() - started };
}

describe('1,024 event streams from one client', () => {
  let server: RunningServer;
  let opened: Opened[];

  beforeAll(async () => {
    server = await serve();
    opened = await Promise.all(Array.from({ length: 1024 }, () => openStream(server.url)));
  });

  afterAll(async () => {
    for (const { socket } of opened) socket.destroy();
    await server.close();
  });

  it('opens 16 and refuses the rest with 429, Retry-After and a closed connection', async () => {
    const statuses = opened.map(({ status }) => status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(
      SERVE_DEFAULTS.streams.maxPerClient,
    );
    const refused = opened.filter(({ status }) => status === 429);
    expect(refused).toHaveLength(1024 - SERVE_DEFAULTS.streams.maxPerClient);
    expect(refused[0]?.head).toMatch(/\r\nretry-after: \d+\r\n/i);
    expect(refused[0]?.head).toMatch(/\r\nconnection: close\r\n/i);
    await Promise.all(refused.map(({ socket }) => closed(socket)));
    expect(server.dashboard.streamCount).toBe(SERVE_DEFAULTS.streams.maxPerClient);
  });

  it('leaves /healthz and a status query answering in < 1 s', async () => {
    const id = await submitOk(server.url, { count: 0, visits: [] });
    const health = await timed(server.url, '/healthz');
    const status = await timed(server.url, `/api/status?jobid=${id}`);
    expect(health.status).toBe(200);
    expect(status.status).toBe(200);
    expect(health.ms).toBeLessThan(1000);
    expect(status.ms).toBeLessThan(1000);
  });

  it('gives a place back when a stream ends', async () => {
    const held = opened.find(({ status }) => status === 200);
    held?.socket.destroy();
    await expect
      .poll(() => server.dashboard.streamCount)
      .toBe(SERVE_DEFAULTS.streams.maxPerClient - 1);
    const again = await openStream(server.url);
    opened.push(again);
    expect(again.status).toBe(200);
  });
});

describe('the total over all clients', () => {
  it('refuses a stream past --max-streams, whichever address asks', async () => {
    const server = await serve({ maxStreams: 3, maxStreamsPerClient: 2 });
    const sockets: Socket[] = [];
    try {
      const first = await Promise.all([
        openStream(server.url, '127.0.0.1'),
        openStream(server.url, '127.0.0.1'),
        openStream(server.url, '127.0.0.1'),
      ]);
      sockets.push(...first.map(({ socket }) => socket));
      expect(first.map(({ status }) => status).sort()).toEqual([200, 200, 429]);
      const other = await openStream(server.url, '127.0.0.2');
      sockets.push(other.socket);
      expect(other.status).toBe(200);
      const past = await openStream(server.url, '127.0.0.3');
      sockets.push(past.socket);
      expect(past.status).toBe(429);
      // The API is not the streams' budget.
      expect((await call(server.url, '/healthz')).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });

  it('never lets streams take more than half of --max-connections', async () => {
    const server = await startServer({
      port: 0,
      dbPath: join(folder, `${++servers}.db`),
      options: serveOptions({ concurrency: 2 }),
      http: { maxConnections: 8 },
      dashboard: { heartbeatMs: 60_000, maxStreamsPerClient: 100 },
    });
    const sockets: Socket[] = [];
    try {
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => openStream(server.url, `127.0.0.${i + 1}`)),
      );
      sockets.push(...answers.map(({ socket }) => socket));
      expect(answers.filter(({ status }) => status === 200)).toHaveLength(4);
      expect((await call(server.url, '/healthz')).status).toBe(200);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });
});

describe('--stream-max-age', () => {
  it('ends a stream that old; its reconnect with Last-Event-ID resumes', async () => {
    const server = await serve({ streamMaxAgeMs: 200 });
    try {
      const first = await fetch(`${server.url}/api/events`);
      const text = await first.text(); // ends when the server ends the stream
      const lastId = /^id: (.+)$/m.exec(text)?.[1];
      expect(lastId).toBeDefined();
      expect(server.dashboard.streamCount).toBe(0);
      const controller = new AbortController();
      const again = await fetch(`${server.url}/api/events`, {
        headers: { 'last-event-id': lastId ?? '' },
        signal: controller.signal,
      });
      const reader = (again.body as ReadableStream<Uint8Array>).getReader();
      let head = '';
      while (!head.includes('event: hello')) {
        const { value, done } = await reader.read();
        if (done) break;
        head += new TextDecoder().decode(value);
      }
      expect(head).toContain('"resumed":true');
      controller.abort();
    } finally {
      await server.close();
    }
  });
});
