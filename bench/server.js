// @ts-check
/**
 * The benchmark's image server, in a process of its own so that its work is
 * not charged to imgjob or to the reference loop: `node:http` with
 * keep-alive, every file held in memory, GET and HEAD, one
 * `Range: bytes=a-b` (206, 416). URL `/<set>/<n>.<ext>` serves file `n mod k`
 * of the set (see catalog.js).
 *
 * `spawnImageServer()` starts it and talks to it over IPC: its origin when it
 * listens, and its counters (requests, 206 answers, body bytes, connections)
 * on request, so the bytes a run made the server send can be checked.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

import { fileOf, loadCatalog, parseImagePath } from './catalog.js';

import { parseRange } from '../scripts/fixture-server.js';

/** @typedef {{ requests: number, partial: number, bytes: number, connections: number }} ServerStats */

/**
 * @typedef {object} ImageServer
 * @property {string} origin `http://127.0.0.1:<port>`
 * @property {(reset?: boolean) => Promise<ServerStats>} stats The counters
 *   since the last reset; `reset` zeroes them after reading.
 * @property {() => Promise<void>} close Stops the server process.
 * @property {'node' | 'nginx'} kind
 * @property {number | undefined} pid
 * @property {(urls: readonly string[]) => Promise<void>} serveUrls Makes
 *   these URLs servable (nginx needs a file for each; this server does not).
 */

/** @type {Readonly<Record<string, string>>} */
const CONTENT_TYPES = { jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

if (process.argv[1] === fileURLToPath(import.meta.url)) await serve();

/**
 * Starts `bench/server.js` as a child process and waits until it listens.
 *
 * @returns {Promise<ImageServer>}
 */
export async function spawnImageServer() {
  const child = fork(fileURLToPath(import.meta.url), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  /** @type {((message: ServerStats) => void) | undefined} */
  let waiting;
  const origin = await new Promise((done, fail) => {
    child.once('error', fail);
    child.once('exit', (code) => {
      fail(new Error(`the image server exited with code ${String(code)} before listening`));
    });
    child.on('message', (/** @type {{ origin?: string } & ServerStats} */ message) => {
      if (message.origin) done(message.origin);
      else waiting?.(message);
    });
  });
  child.removeAllListeners('exit');
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGTERM')
      console.error(`image server exited early (${String(code ?? signal)})`);
  });
  return {
    origin: String(origin),
    kind: 'node',
    pid: child.pid,
    serveUrls: async () => undefined,
    stats: (reset = false) =>
      new Promise((done) => {
        waiting = done;
        child.send({ reset });
      }),
    close: () =>
      new Promise((done) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          done();
          return;
        }
        child.removeAllListeners('exit');
        child.once('exit', () => {
          done();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** The child's side: listen on 127.0.0.1:0, report the origin, answer stats requests. */
async function serve() {
  const catalog = loadCatalog();
  /** @type {ServerStats} */
  let stats = { requests: 0, partial: 0, bytes: 0, connections: 0 };
  const server = createServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    stats.requests++;
    const image = parseImagePath((req.url ?? '/').split('?')[0] ?? '/');
    const file = image && fileOf(catalog, image.set, image.n);
    if (
      !image ||
      !file ||
      file.ext !== image.ext ||
      (req.method !== 'GET' && req.method !== 'HEAD')
    ) {
      res.writeHead(404, { 'Content-Length': 0 }).end();
      return;
    }
    const headers = {
      'Content-Type': CONTENT_TYPES[file.ext] ?? 'application/octet-stream',
      'Accept-Ranges': 'bytes',
    };
    const range = parseRange(req.headers.range, file.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${file.size}`, 'Content-Length': 0 }).end();
      return;
    }
    const body = range ? file.data.subarray(range.start, range.end + 1) : file.data;
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Length': body.length,
      ...(range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${file.size}` } : {}),
    });
    if (range) stats.partial++;
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    stats.bytes += body.length;
    res.end(body);
  });
  server.headersTimeout = 65_000;
  server.on('connection', () => {
    stats.connections++;
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', () => done(undefined)));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Expected a TCP address');
  process.on('message', (/** @type {{ reset?: boolean }} */ message) => {
    process.send?.(stats);
    if (message.reset) stats = { requests: 0, partial: 0, bytes: 0, connections: 0 };
  });
  // The parent going away (even killed) ends the server too.
  process.on('disconnect', () => {
    server.close();
    server.closeAllConnections();
  });
  process.on('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    process.disconnect();
  });
  process.send?.({ origin: `http://127.0.0.1:${address.port}` });
}
