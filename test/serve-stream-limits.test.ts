/**
 * The event streams' budget over all clients (issue 19 §1): a cap in total
 * and against the connection cap, and an age limit after which the browser
 * resumes. No time bound here: the one case that has one, the answer beside
 * 1,024 streams of one client, is serve-streams.test.ts, run alone.
 */
import type { Socket } from 'node:net';

import { describe, expect, it } from 'vitest';

import { call } from './helpers/serve-client.js';
import { openStream, streamServers } from './helpers/event-stream.js';

const serve = streamServers('serve-stream-limits');

describe('the total over all clients', () => {
  it('refuses a stream past --max-streams, whichever address asks', async () => {
    const server = await serve({ dashboard: { maxStreams: 3, maxStreamsPerClient: 2 } });
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
    const server = await serve({
      http: { maxConnections: 8 },
      dashboard: { maxStreamsPerClient: 100 },
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
    const server = await serve({ dashboard: { streamMaxAgeMs: 200 } });
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
