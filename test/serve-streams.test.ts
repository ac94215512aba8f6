/**
 * The event streams' own budget (issue 19 §1): a cap per client address and
 * in total, 429 with Retry-After past it, and an age limit, so that one
 * client opening a thousand streams cannot take the connections the API and
 * /healthz need. This file holds the time bound (an answer under 1 s beside
 * 1,024 streams) and runs alone; the other limits are in
 * serve-stream-limits.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { RunningServer } from '../src/serve/server.js';
import { SERVE_DEFAULTS } from '../src/serve/defaults.js';
import { call, submitOk } from './helpers/serve-client.js';
import { closed, openStream, streamServers, type Opened } from './helpers/event-stream.js';

const serve = streamServers('serve-streams');

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
