// @ts-check
/**
 * What reading and dropping a body costs in Node, per way of reading it: the
 * CPU per image (and per MB) of fetching W3m's photo mix (nginx when
 * present) with 64 connections, reading each whole body and dropping it,
 * keeping only the first bytes (the size is read from them). Each way runs in
 * a process of its own, the ways taking turns in every round (the order
 * reversed every other round), and the figures are medians over rounds.
 *
 *   node bench/body-path.js [--rounds 3] [--ways a,b,…] [--images 4096]
 *
 * Ways:
 * - `dispatch`: undici `dispatch()` with a handler's `onResponseData` (imgjob's way);
 * - `request-iter`: undici `request()`, `for await` over the body (bench/loop.js's way);
 * - `request-dump`: undici `request()`, the first chunk, then `body.dump()`;
 * - `request-hwm`: `request-iter` with a 1 MiB `highWaterMark` on the body stream;
 * - `http-data`: `node:http` with a keep-alive Agent, `res.on('data')`;
 * - `http-resume`: `node:http`, the first chunk, then `res.resume()`;
 * - `net-data`: no HTTP library: `node:net` sockets, 'data' events, the head
 *   parsed by hand (Content-Length bodies only) — Node's floor with a Buffer per read;
 * - `net-onread`: the same with `onread`: every read into one reused 256 KiB
 *   buffer, no Buffer per read — the least Node can spend per byte;
 * - `dispatch-onread`: `dispatch` over sockets that read with `onread` and
 *   push a copy of each read (see `onreadConnect`).
 *
 * Any way with `+roomy` after it runs with `--heap-growing-percent=900`, the
 * heap room `imgjob run` gives a job of fewer than 50k images here.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { Agent, buildConnector, request } from 'undici';

import { loadCatalog } from './catalog.js';
import { hasNginx, spawnNginx } from './nginx.js';
import { spawnImageServer } from './server.js';
import { defineWorkloads, manifestOf, urlsOf } from './workloads.js';

const WAYS = /** @type {const} */ ([
  'dispatch',
  'request-iter',
  'request-dump',
  'request-hwm',
  'http-data',
  'http-resume',
  'net-data',
  'net-onread',
  'dispatch-onread',
]);
/** @typedef {(typeof WAYS)[number]} Way */
const CONNECTIONS = 64;
/** The head kept of each body: enough for any photo's size. */
const HEAD_BYTES = 4096;

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    ways: { type: 'string', default: WAYS.join(',') },
    images: { type: 'string', default: '4096' },
    way: { type: 'string' },
    urls: { type: 'string' },
  },
});

if (values.way) {
  // A child: one way over the URL list; prints its figures.
  const urls = /** @type {string[]} */ (JSON.parse(await readFile(String(values.urls), 'utf8')));
  const result = await fetchAll(/** @type {Way} */ (values.way), urls);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  await compare();
}

async function compare() {
  const ways = /** @type {Way[]} */ (values.ways.split(','));
  for (const way of ways)
    if (!WAYS.includes(/** @type {Way} */ (way.replace(/\+roomy$/, ''))))
      throw new Error(`no way ${way}`);
  const catalog = loadCatalog();
  const server = hasNginx() ? await spawnNginx(catalog) : await spawnImageServer();
  const scratch = await mkdtemp(join(tmpdir(), 'imgjob-body-path-'));
  try {
    const manifest = manifestOf(defineWorkloads(false).W3m, catalog, server.origin);
    const urls = urlsOf(manifest).slice(0, Number(values.images));
    await server.serveUrls(urls);
    const urlsFile = join(scratch, 'urls.json');
    await writeFile(urlsFile, JSON.stringify(urls));
    console.log(
      `[body-path] ${server.kind}; ${urls.length} images; ${CONNECTIONS} connections; load ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')}`,
    );
    // Warm the server's caches.
    await child('dispatch', urlsFile);
    /** @type {Record<string, { cpu: number[], wall: number[], mb: number }>} */
    const seen = {};
    const rounds = Number(values.rounds);
    for (let round = 1; round <= rounds; round++) {
      for (const way of round % 2 === 1 ? ways : [...ways].reverse()) {
        const result = await child(way, urlsFile);
        const entry = (seen[way] ??= { cpu: [], wall: [], mb: result.bytes / 1e6 });
        entry.cpu.push(result.cpuMs);
        entry.wall.push(result.wallMs);
        console.log(
          `round ${round} ${way.padEnd(12)} ${(result.wallMs / 1000).toFixed(2)} s wall, ${(result.cpuMs / 1000).toFixed(2)} s CPU`,
        );
      }
    }
    const base = median(seen[ways[0] ?? 'dispatch']?.cpu ?? []);
    // Every way reads the same bodies; the ways that drop the rest unread count only the heads.
    const mb = Math.max(...Object.values(seen).map((entry) => entry.mb));
    console.log(`\nmedians of ${rounds} rounds (CPU of the process: user + system):`);
    console.log('way           CPU/image  CPU/MB    wall     CPU ÷ first');
    for (const way of ways) {
      const entry = seen[way];
      if (!entry) continue;
      const cpu = median(entry.cpu);
      console.log(
        `${way.padEnd(13)} ${((cpu * 1000) / urls.length).toFixed(0).padStart(5)} µs  ${(cpu / mb).toFixed(3).padStart(6)} ms  ${(median(entry.wall) / 1000).toFixed(2).padStart(5)} s   ${(cpu / base).toFixed(3)}`,
      );
    }
    console.log(`load after: ${loadavg()[0]?.toFixed(1)}`);
  } finally {
    await server.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * @param {Way} way
 * @param {string} urlsFile
 * @returns {Promise<{ bytes: number, wallMs: number, cpuMs: number }>}
 */
function child(way, urlsFile) {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      // `way+roomy`: the same way with the heap room `imgjob run` gives a job under 50k images (src/run/heap-growth.ts).
      [
        ...(way.endsWith('+roomy') ? ['--heap-growing-percent=900'] : []),
        self,
        '--way',
        way.replace(/\+roomy$/, ''),
        '--urls',
        urlsFile,
      ],
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${way} failed: ${stderr}`));
        else resolve(JSON.parse(stdout));
      },
    );
  });
}

/**
 * @param {Way} way
 * @param {string[]} urls
 */
async function fetchAll(way, urls) {
  const get = way.startsWith('http')
    ? httpGetter(way)
    : way.startsWith('net')
      ? netGetter(way)
      : undiciGetter(way);
  let next = 0;
  let bytes = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let url = urls[next++]; url !== undefined; url = urls[next++]) {
        const got = await get.fetch(url);
        if (!isImageHead(got.head)) throw new Error(`${url}: no image header`);
        bytes += got.bytes;
      }
    }),
  );
  const wallMs = performance.now() - started;
  await get.close();
  const usage = process.resourceUsage();
  return { bytes, wallMs, cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 };
}

/** @typedef {{ fetch(url: string): Promise<{ head: Buffer, bytes: number }>, close(): Promise<void> }} Getter */

/**
 * @param {Way} way
 * @returns {Getter}
 */
function undiciGetter(way) {
  const connect = onreadConnect(way);
  const agent = new Agent({ connections: CONNECTIONS, ...(connect ? { connect } : {}) });
  if (way.startsWith('dispatch')) {
    return {
      fetch: (url) =>
        new Promise((resolve, reject) => {
          const { origin, pathname } = new URL(url);
          /** @type {Buffer} */
          let head = Buffer.alloc(0);
          let bytes = 0;
          agent.dispatch(
            { origin, path: pathname, method: 'GET' },
            {
              onRequestStart() {},
              onResponseStart(_controller, status) {
                if (status !== 200) reject(new Error(`${url}: HTTP ${status}`));
              },
              onResponseData(_controller, chunk) {
                if (bytes === 0) head = chunk.subarray(0, HEAD_BYTES);
                bytes += chunk.length;
              },
              onResponseEnd() {
                resolve({ head, bytes });
              },
              onResponseError(_controller, error) {
                reject(error);
              },
            },
          );
        }),
      close: () => agent.close(),
    };
  }
  return {
    async fetch(url) {
      const options = way === 'request-hwm' ? { highWaterMark: 1024 * 1024 } : {};
      const { statusCode, body } = await request(url, { dispatcher: agent, ...options });
      if (statusCode !== 200) throw new Error(`${url}: HTTP ${statusCode}`);
      /** @type {Buffer} */
      let head = Buffer.alloc(0);
      let bytes = 0;
      if (way === 'request-dump') {
        // The first chunk, then the rest read and dropped (a `break` out of
        // `for await` would destroy the stream and close the connection).
        body.once('data', (/** @type {Buffer} */ chunk) => {
          head = chunk.subarray(0, HEAD_BYTES);
          bytes += chunk.length;
        });
        await body.dump({ limit: Number.MAX_SAFE_INTEGER });
        return { head, bytes };
      }
      for await (const chunk of /** @type {AsyncIterable<Buffer>} */ (body)) {
        if (bytes === 0) head = chunk.subarray(0, HEAD_BYTES);
        bytes += chunk.length;
      }
      return { head, bytes };
    },
    close: () => agent.close(),
  };
}

/**
 * @param {Way} way
 * @returns {Getter}
 */
function httpGetter(way) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  return {
    fetch: (url) =>
      new Promise((resolve, reject) => {
        http
          .get(url, { agent }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode}`));
            /** @type {Buffer} */
            let head = Buffer.alloc(0);
            let bytes = 0;
            if (way === 'http-resume') {
              res.once('data', (/** @type {Buffer} */ chunk) => {
                head = chunk.subarray(0, HEAD_BYTES);
                bytes += chunk.length;
                res.resume();
              });
              res.pause();
              res.once('readable', () => res.resume());
            } else {
              res.on('data', (/** @type {Buffer} */ chunk) => {
                if (bytes === 0) head = chunk.subarray(0, HEAD_BYTES);
                bytes += chunk.length;
              });
            }
            res.on('end', () => resolve({ head, bytes }));
            res.on('error', reject);
          })
          .on('error', reject);
      }),
    close: async () => agent.destroy(),
  };
}

/**
 * `dispatch-onread`: every socket reads into one shared 256 KiB buffer
 * (`onread`, which undici's connector passes on to `net.connect`) and pushes
 * a copy of each read into its stream, so undici reads an ordinary socket,
 * in fewer, larger chunks.
 * @param {Way} way
 */
function onreadConnect(way) {
  if (way !== 'dispatch-onread') return undefined;
  const shared = Buffer.allocUnsafe(256 * 1024);
  const onread = {
    buffer: shared,
    /** @this {import('node:net').Socket} @param {number} n */
    callback(n) {
      return this.push(Buffer.from(shared.subarray(0, n)));
    },
  };
  return buildConnector(
    /** @type {import('undici').buildConnector.BuildOptions} */ (
      /** @type {unknown} */ ({ onread })
    ),
  );
}

/**
 * A bare HTTP/1.1 client over `node:net`: one request at a time per
 * connection, keep-alive, Content-Length bodies only (nginx's static files).
 * @param {Way} way
 * @returns {Getter}
 */
function netGetter(way) {
  /** @type {Array<(conn: NetConn) => void>} */
  const waiting = [];
  /** @type {NetConn[]} */
  const idle = [];
  /** @type {NetConn[]} */
  const all = [];
  const reused = way === 'net-onread' ? Buffer.allocUnsafe(256 * 1024) : undefined;
  /** @typedef {{ socket: import('node:net').Socket, feed(chunk: Buffer): void, job?: undefined | { path: string, resolve(r: { head: Buffer, bytes: number }): void, reject(e: Error): void } }} NetConn */
  /** @param {string} host @param {number} port */
  function open(host, port) {
    /** @type {NetConn} */
    const conn = /** @type {any} */ ({});
    let headBuf = Buffer.alloc(0);
    let inBody = false;
    let remaining = 0;
    let bytes = 0;
    /** @type {Buffer} */
    let head = Buffer.alloc(0);
    conn.feed = (chunk) => {
      let at = 0;
      while (at < chunk.length) {
        if (!inBody) {
          headBuf = Buffer.concat([headBuf, chunk.subarray(at)]);
          const end = headBuf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const text = headBuf.toString('latin1', 0, end);
          const match = /content-length: *(\d+)/i.exec(text);
          if (!text.startsWith('HTTP/1.1 200') || !match) {
            conn.job?.reject(new Error(`bad response: ${text.slice(0, 40)}`));
            return;
          }
          remaining = Number(match[1]);
          const consumed = end + 4 - (headBuf.length - (chunk.length - at));
          at += consumed;
          headBuf = Buffer.alloc(0);
          inBody = true;
          bytes = 0;
          head = Buffer.alloc(0);
          continue;
        }
        const take = Math.min(remaining, chunk.length - at);
        if (bytes === 0) head = Buffer.from(chunk.subarray(at, at + Math.min(take, HEAD_BYTES)));
        bytes += take;
        remaining -= take;
        at += take;
        if (remaining === 0) {
          inBody = false;
          const job = conn.job;
          conn.job = undefined;
          job?.resolve({ head, bytes });
          const next = waiting.shift();
          if (next) next(conn);
          else idle.push(conn);
        }
      }
    };
    conn.socket = reused
      ? net.connect({
          host,
          port,
          noDelay: true,
          onread: { buffer: reused, callback: (n) => (conn.feed(reused.subarray(0, n)), true) },
        })
      : net.connect({ host, port, noDelay: true });
    if (!reused) conn.socket.on('data', conn.feed);
    conn.socket.on('error', (error) => conn.job?.reject(error));
    all.push(conn);
    return conn;
  }
  return {
    fetch: (url) =>
      new Promise((resolve, reject) => {
        const { hostname, port, pathname } = new URL(url);
        /** @param {NetConn} conn */
        const go = (conn) => {
          conn.job = { path: pathname, resolve, reject };
          conn.socket.write(`GET ${pathname} HTTP/1.1\r\nhost: ${hostname}:${port}\r\n\r\n`);
        };
        const conn =
          idle.pop() ?? (all.length < CONNECTIONS ? open(hostname, Number(port)) : undefined);
        if (conn) go(conn);
        else waiting.push(go);
      }),
    close: async () => {
      for (const conn of all) conn.socket.destroy();
    },
  };
}

/** JPEG (FF D8) or PNG (89 50 4E 47): the mix's photos. */
function isImageHead(/** @type {Buffer} */ head) {
  return (head[0] === 0xff && head[1] === 0xd8) || (head[0] === 0x89 && head[1] === 0x50);
}

/** @param {number[]} list */
function median(list) {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
