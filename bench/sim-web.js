// @ts-check
/**
 * A simulated web of many hosts on one machine: one listener on 0.0.0.0
 * serves every `127.x.y.z` address, and the local address of a connection
 * tells which host was asked. Each host has a kind, drawn from a seed:
 *
 * | kind | share | answers |
 * | --- | --- | --- |
 * | `transient` | 5% | 503 (no Retry-After) to the first request of each image, then the image |
 * | `limited` | 3% | at most 2 requests a second; beyond that 429 with `Retry-After` |
 * | `reset` | 1% | a TCP reset for the first request of each image, then the image |
 * | `missing` | 0.5% | 404 for everything: its images cannot succeed |
 * | `ok` | the rest | the image; 1% of images trickle (8 chunks over ~1.4 s) |
 *
 * It measures what a well-behaved client must keep at zero or low: the most
 * requests in flight on one host at once, the requests that arrived
 * inside a Retry-After window the host gave (after a grace of `GRACE_MS`
 * for requests the client had sent before the 429 reached it), and the
 * retries of an image that arrived inside the window its own 429 gave.
 *
 * Also a tiny DNS server (UDP) answering A records for `h<i>.web.test`,
 * counting the queries, so imgjob's DNS cache can be measured through
 * c-ares as it really runs (`IMGJOB_TEST_DNS_SERVERS`).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';

import { mulberry32 } from './workloads.js';

const PNG = readFileSync(new URL('../fixtures/images/image.png', import.meta.url));

/**
 * A request that arrives this soon after a 429 was sent is not counted as
 * inside its window: the client had sent it, or decided to, before it could
 * read the 429 (both processes share a few busy cores, where either may wait
 * 100 ms or more for one). Requests inside the grace are reported apart.
 */
export const GRACE_MS = 250;

/** @typedef {'ok' | 'transient' | 'limited' | 'reset' | 'missing'} HostKind */

/**
 * @typedef {object} SimHost
 * @property {number} index
 * @property {string} address `127.x.y.z`
 * @property {HostKind} kind
 */

/**
 * @typedef {object} SimStats
 * @property {number} requests
 * @property {number} maxInFlight The most requests in flight on one host at once.
 * @property {string} maxInFlightHost
 * @property {number} insideRetryAfter Requests that arrived inside a Retry-After window, after the grace.
 * @property {number} insideRetryAfterRaw The same without the grace.
 * @property {number} retriedInsideWindow Requests for an image that arrived
 *   inside the window its own 429 gave. Unlike the two above, this one needs
 *   no grace, and so does not depend on how busy the machine is: the client
 *   can only send an image's retry after it has read that image's 429, and
 *   a window that starts when the client reads the 429 ends after the one
 *   that started when the host sent it.
 * @property {number} answered429
 * @property {number} answered503
 */

/**
 * @typedef {object} SimWeb
 * @property {number} port
 * @property {readonly SimHost[]} hosts
 * @property {(host: SimHost, image: number) => boolean} trickles
 * @property {() => SimStats} stats
 * @property {() => Promise<void>} close
 */

/**
 * @param {{ hosts: number, seed?: number, port?: number, plain?: boolean }} options
 *   `plain`: every host is `ok` and nothing trickles.
 * @returns {Promise<SimWeb>}
 */
export async function startSimulatedWeb(options) {
  const random = mulberry32(options.seed ?? 18);
  /** @type {SimHost[]} */
  const hosts = Array.from({ length: options.hosts }, (_, index) => ({
    index,
    address: hostAddress(index),
    kind: options.plain ? 'ok' : kindOf(random()),
  }));
  // Every kind at least once, whatever the draw (a small web would miss some).
  /** @type {HostKind[]} */ (
    options.plain ? [] : ['transient', 'limited', 'reset', 'missing']
  ).forEach((kind, at) => {
    const host = hosts[hosts.length - 1 - at];
    if (host && !hosts.some((other) => other.kind === kind)) host.kind = kind;
  });
  const byAddress = new Map(hosts.map((host) => [host.address, host]));
  /** @type {Map<string, { inFlight: number, served: number[], windows: { sentAt: number, until: number }[], seen: Set<string>, limitedUntil: Map<string, number> }>} */
  const state = new Map();
  /** @type {SimStats} */
  const stats = {
    requests: 0,
    maxInFlight: 0,
    maxInFlightHost: '',
    insideRetryAfter: 0,
    insideRetryAfterRaw: 0,
    retriedInsideWindow: 0,
    answered429: 0,
    answered503: 0,
  };
  /** @param {SimHost} host @param {number} image */
  const trickles = (host, image) =>
    !options.plain && host.kind === 'ok' && (host.index * 31 + image * 17) % 100 === 0;

  const server = createServer((req, res) => {
    const address = (req.socket.localAddress ?? '').replace(/^::ffff:/, '');
    const host = byAddress.get(address);
    if (!host) {
      res.writeHead(421).end();
      return;
    }
    const now = Date.now();
    stats.requests++;
    let hostState = state.get(address);
    if (!hostState) {
      hostState = {
        inFlight: 0,
        served: [],
        windows: [],
        seen: new Set(),
        limitedUntil: new Map(),
      };
      state.set(address, hostState);
    }
    const own = hostState;
    for (const window of own.windows) {
      if (now < window.until) {
        stats.insideRetryAfterRaw++;
        if (now > window.sentAt + GRACE_MS) stats.insideRetryAfter++;
        break;
      }
    }
    own.windows = own.windows.filter((window) => window.until > now);
    own.inFlight++;
    if (own.inFlight > stats.maxInFlight) {
      stats.maxInFlight = own.inFlight;
      stats.maxInFlightHost = address;
    }
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      own.inFlight--;
    };
    res.on('finish', end);
    res.on('close', end);

    const path = req.url ?? '/';
    const image = Number(/(\d+)\.png$/.exec(path)?.[1] ?? 0);
    const first = !own.seen.has(path);
    own.seen.add(path);
    if (now < (own.limitedUntil.get(path) ?? 0)) stats.retriedInsideWindow++;
    switch (host.kind) {
      case 'missing':
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not here');
        return;
      case 'transient':
        if (first) {
          stats.answered503++;
          res.writeHead(503, { 'content-type': 'text/plain' }).end('busy');
          return;
        }
        break;
      case 'reset':
        if (first) {
          end();
          req.socket.resetAndDestroy();
          return;
        }
        break;
      case 'limited': {
        own.served = own.served.filter((at) => at > now - 1000);
        if (own.served.length >= 2) {
          const oldest = own.served[0] ?? now;
          const seconds = Math.max(1, Math.ceil((oldest + 1000 - now) / 1000));
          own.windows.push({ sentAt: now, until: now + seconds * 1000 });
          own.limitedUntil.set(path, now + seconds * 1000);
          stats.answered429++;
          res.writeHead(429, { 'retry-after': String(seconds), 'content-type': 'text/plain' });
          res.end('slow down');
          return;
        }
        own.served.push(now);
        break;
      }
      default:
        break;
    }
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
    if (!trickles(host, image)) {
      res.end(PNG);
      return;
    }
    const chunk = Math.ceil(PNG.length / 8);
    let sent = 0;
    const timer = setInterval(() => {
      res.write(PNG.subarray(sent, sent + chunk));
      sent += chunk;
      if (sent >= PNG.length) {
        clearInterval(timer);
        res.end();
      }
    }, 200);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise((resolve) => {
    server.listen(options.port ?? 0, '0.0.0.0', () => resolve(undefined));
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    hosts,
    trickles,
    stats: () => ({ ...stats }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The address of host `index`: 127.20.0.1, 127.20.0.2, … (never 127.0.0.1).
 * @param {number} index
 */
export function hostAddress(index) {
  return `127.20.${Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/** @param {number} draw @returns {HostKind} */
function kindOf(draw) {
  if (draw < 0.05) return 'transient';
  if (draw < 0.08) return 'limited';
  if (draw < 0.09) return 'reset';
  if (draw < 0.095) return 'missing';
  return 'ok';
}

// ---------------------------------------------------------------- DNS

/**
 * @typedef {object} SimDns
 * @property {string} server `127.0.0.1:<port>`, for IMGJOB_TEST_DNS_SERVERS
 * @property {() => number} queries Questions answered so far (A, AAAA, any name)
 * @property {() => number} lookups A questions for names it knows, retransmissions not counted again
 * @property {() => Promise<void>} close
 */

/**
 * Answers `h<i>.web.test` with host i's address (A, `ttl` seconds); AAAA
 * with no record; anything else with NXDOMAIN.
 *
 * @param {{ ttl: number }} options
 * @returns {Promise<SimDns>}
 */
export async function startSimulatedDns(options) {
  const socket = createSocket('udp4');
  let queries = 0;
  /** A and the query id: a retransmission (same id, after c-ares's timeout) is the same lookup. */
  const lookups = new Set();
  socket.on('message', (query, peer) => {
    const question = readQuestion(query);
    if (!question) return;
    queries++;
    const index = /^h(\d+)\.web\.test$/.exec(question.name)?.[1];
    const known = index !== undefined;
    if (known && question.type === 1) lookups.add(`${question.name} ${query.readUInt16BE(0)}`);
    /** @type {Buffer[]} */
    const answers = [];
    if (known && question.type === 1) {
      const rdata = Buffer.from(hostAddress(Number(index)).split('.').map(Number));
      const answer = Buffer.alloc(12);
      answer.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      answer.writeUInt16BE(1, 2); // A
      answer.writeUInt16BE(1, 4); // IN
      answer.writeUInt32BE(options.ttl, 6);
      answer.writeUInt16BE(4, 10);
      answers.push(answer, rdata);
    }
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(known ? 0x8180 : 0x8183, 2); // response, RD, RA; NOERROR or NXDOMAIN
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    socket.send(Buffer.concat([header, question.raw, ...answers]), peer.port, peer.address);
  });
  await new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () => resolve(undefined));
  });
  return {
    server: `127.0.0.1:${socket.address().port}`,
    queries: () => queries,
    lookups: () => lookups.size,
    close: () =>
      new Promise((resolve) => {
        socket.close(() => resolve());
      }),
  };
}

/** @param {Buffer} query */
function readQuestion(query) {
  let at = 12;
  /** @type {string[]} */
  const labels = [];
  while (at < query.length) {
    const length = query[at] ?? 0;
    if (length === 0) break;
    labels.push(query.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += length + 1;
  }
  if (at + 5 > query.length) return undefined;
  return {
    name: labels.join('.').toLowerCase(),
    type: query.readUInt16BE(at + 1),
    raw: query.subarray(12, at + 5),
  };
}
