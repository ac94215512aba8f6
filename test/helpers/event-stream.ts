/**
 * Event streams on raw sockets, for the streams' budget tests: each stream
 * on a connection of its own, from a chosen local address (127.0.0.x), so a
 * test can be many clients or one.
 */
import { connect, type Socket } from 'node:net';

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
