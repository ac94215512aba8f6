/** Byte-level helpers of the fault server: ranges, streamed bodies, raw responses. */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** A body of `size` bytes: `head`, then zeros (so a padded file costs no memory). */
export type Body = { readonly head: Uint8Array; readonly size: number };

const CHUNK = 64 * 1024;
const ZEROS = new Uint8Array(CHUNK);

// One Range parser for every test and bench server.
export { parseRange } from '../../scripts/fixture-server.js';

/**
 * Writes bytes `start..end` (inclusive) of `body` and ends the response,
 * honouring backpressure; stops quietly when the client goes away, so an
 * endless or huge body only costs what the client reads.
 */
export async function streamBody(
  res: ServerResponse,
  body: Body,
  start: number,
  end: number,
  onSent: (bytes: number) => void,
): Promise<void> {
  for (let pos = start; pos <= end;) {
    if (res.destroyed) return;
    const chunk = slice(body, pos, Math.min(CHUNK, end - pos + 1));
    pos += chunk.length;
    const flushed = res.write(chunk);
    onSent(chunk.length);
    if (!flushed) await drained(res);
  }
  res.end();
}

/**
 * Writes a 200 head and `body` straight to the socket, bypassing node:http,
 * so the caller can then cut the connection in a way a well-behaved server
 * never would (reset, early close, stall). With a `contentLength` the head
 * declares it; without one, the body goes as one chunk of a chunked body
 * that never gets its last chunk.
 */
export function sendRaw(
  socket: Socket,
  contentLength: number | undefined,
  contentType: string,
  body: Uint8Array,
): Promise<void> {
  const framing =
    contentLength === undefined ? 'transfer-encoding: chunked' : `content-length: ${contentLength}`;
  socket.write(`HTTP/1.1 200 OK\r\ncontent-type: ${contentType}\r\n${framing}\r\n\r\n`);
  if (contentLength === undefined) socket.write(`${body.length.toString(16)}\r\n`);
  return new Promise((resolve) => {
    socket.write(body, () => {
      resolve();
    });
  });
}

function slice(body: Body, pos: number, length: number): Uint8Array {
  const { head } = body;
  if (pos + length <= head.length) return head.subarray(pos, pos + length);
  if (pos >= head.length) return ZEROS.subarray(0, length);
  const out = new Uint8Array(length);
  out.set(head.subarray(pos));
  return out;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
