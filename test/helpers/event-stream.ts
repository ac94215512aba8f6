/**
 * Event streams on raw sockets, for the streams' budget tests: each stream
 * on a connection of its own, from a chosen local address (127.0.0.x), so a
 * test can be many clients or one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll } from 'vitest';

import { startServer, type RunningServer, type ServeConfig } from '../../src/serve/server.js';
import { serveOptions } from './serve-options.js';

/** What a streams test sets of its server; the heartbeat is off unless set. */
export type StreamServerConfig = Pick<ServeConfig, 'dashboard' | 'http'>;

/**
 * Starts the servers of one streams test file, each on a database of its own
 * in one folder, removed after the file.
 */
export function streamServers(
  name: string,
): (config?: StreamServerConfig) => Promise<RunningServer> {
  const folder = mkdtempSync(join(tmpdir(), `imgjob-${name}-`));
  let servers = 0;
  afterAll(() => {
    rmSync(folder, { recursive: true, force: true });
  });
  return ({ dashboard = {}, http } = {}) =>
    startServer({
      port: 0,
      dbPath: join(folder, `${String(++servers)}.db`),
      options: serveOptions({ concurrency: 2 }),
      ...(http === undefined ? {} : { http }),
      dashboard: { heartbeatMs: 60_000, ...dashboard },
    });
}

export type Opened = { readonly status: number; readonly head: string; readonly socket: Socket };

/** `GET /api/events` on a connection of its own (from `localAddress`); resolves with the answer's head. */
export function openStream(
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
export function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.readableEnded || socket.destroyed) resolve();
    socket.on('close', () => {
      resolve();
    });
    socket.resume();
  });
}
