/**
 * A real `node:http` server on 127.0.0.1 that serves image files and the
 * faults a download must survive. Every request is recorded, so tests assert
 * on what the server saw rather than on timing.
 *
 * Files are `fixtures/images/*` (read lazily) or bytes added with `addFile()`.
 * Routes (`<name>` is one file name; `<n>` a number):
 *
 * | route | answer |
 * | --- | --- |
 * | `/img/<name>` | the file; honours one `Range: bytes=a-b` (206, 416) |
 * | `/png/<any/path>` | the 50×30 fixture PNG (`PNG_SIZE`), whatever the rest of the path: one unique URL per image of a big job |
 * | `/pad/<n>/<name>` | the file padded with zeros to exactly `n` bytes (streamed, so `n` may be huge) |
 * | `/status/<code>` | that status with a short text body (`?retry-after=` adds the header) |
 * | `/reason/<code>?text=<reason>` | that status with any reason phrase, control characters included (written on the socket: node:http refuses them) |
 * | `/flaky/<n>/<key>/<name>` | the first `n` requests of this path fail, later ones get the file; `?fail=503` (default), any status, or `reset` |
 * | `/slow/<bytes>/<ms>/<name>` | headers at once, then `bytes` every `ms` |
 * | `/hang` | never answers |
 * | `/stall/<bytes>/<name>` | full Content-Length, `bytes` of body, then nothing |
 * | `/reset/<bytes>/<name>` | a chunked body: `bytes` of it, then a TCP reset (chunked because a reset after a Content-Length body can reach the client as a clean close, depending on timing) |
 * | `/truncate/<bytes>/<name>` | full Content-Length, `bytes` of body, then a clean close |
 * | `/endless/<name>` | no Content-Length; the file, then zeros until the client leaves |
 * | `/redirect/<n>/<name>` | `n` redirect hops, then `/img/<name>`; `?relative=1`, `?status=301\|302\|303\|307\|308` |
 * | `/loop/<key>/a`, `/loop/<key>/b` | redirect to each other |
 * | `/redirect-to?location=<url>` | one redirect to any Location (`ftp:`, `file:`, …) |
 * | `/html` | 200 `text/html` page |
 * | `/gate/<key>/<name>` | held until the test calls `gate(key).open()`, then the file |
 * | `/gate/<key>/<route>/…` | held the same way, then answered as `/<route>/…` (`/gate/k/png/1/2.png`) |
 *
 * Query modifiers on every route that sends a file: `range=ignore` (answer 200
 * to a Range request), `cl=omit` (chunked, no Content-Length), `type=<mime>`.
 *
 * ```ts
 * const server = await startFaultServer();
 * await fetchImage(server.url('/flaky/2/k/image.png'));
 * expect(server.requestsTo('/flaky/')).toHaveLength(3);
 * const gate = server.gate('g'); // requests to /gate/g/… now wait
 * await gate.reached; gate.open();
 * await server.close();
 * ```
 */
import { readFile } from 'node:fs/promises';
import { createServer, STATUS_CODES } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

import { parseRange, sendRaw, streamBody, type Body } from './fault-server-io.js';

export type RecordedRequest = {
  /** 0, 1, 2… in arrival order since the last `reset()` (its index in `requests`). */
  readonly seq: number;
  readonly method: string;
  /** Path and query, as requested. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The Range header, when sent. */
  readonly range: string | undefined;
  /** Id of the TCP connection it came on (1, 2, … in accept order). */
  readonly socket: number;
  /** `performance.now()` at arrival. */
  readonly at: number;
  /** Body bytes written so far. */
  readonly bytesSent: number;
  readonly state: 'open' | 'finished' | 'aborted';
};

/** A `/gate/<key>/…` route: its requests wait until `open()`. */
export type Gate = {
  /** Resolves with the first request that reached the gate. */
  readonly reached: Promise<RecordedRequest>;
  /** Lets every waiting (and later) request through. */
  open(): void;
};

export type FaultServer = {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** Absolute URL of a path on this server: `url('/img/image.png')`. */
  url(path: string): string;
  /** Every request since the last `reset()`, in arrival order (live: entries update as they progress). */
  readonly requests: readonly RecordedRequest[];
  /** Requests whose path starts with `prefix`. */
  requestsTo(prefix: string): RecordedRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Serves `bytes` as `<name>` on every file route (takes precedence over fixtures). */
  addFile(name: string, bytes: Uint8Array): void;
  gate(key: string): Gate;
  /** Resolves once `predicate(requests)` holds; checked on every server event. */
  until(predicate: (requests: readonly RecordedRequest[]) => boolean): Promise<void>;
  /** Forgets recorded requests, flaky counters and gates (files stay). */
  reset(): void;
  /** Stops listening and destroys every open socket, so it never hangs. */
  close(): Promise<void>;
};

export type FaultServerOptions = {
  /** The loopback address to listen on (`127.0.0.2` for a second host). @default '127.0.0.1' */
  readonly host?: string;
  /** Folder of the fixture files. @default fixtures/images of this repository */
  readonly fixtures?: URL;
  /** Answer 200 to every Range request, like a server without range support. @default false */
  readonly ignoreRange?: boolean;
};

type LiveRequest = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };
type GateState = Gate & {
  isOpen: boolean;
  waiters: (() => void)[];
  onReach: (r: LiveRequest) => void;
};
type Route = (ctx: Ctx, args: string[]) => Promise<void> | void;
type Ctx = {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  record: LiveRequest;
};

/** "Endless" is bounded all the same, so a broken client cannot spin forever. */
const ENDLESS_BYTES = 1024 ** 3;
const DEFAULT_FIXTURES = new URL('../../fixtures/images/', import.meta.url);
/** What `/png/…` answers: the fixture `image.png`. */
const PNG_NAME = 'image.png';
/** What the `/png/…` image measures. */
export const PNG_SIZE = { width: 50, height: 30, perimeter: 160 } as const;

export async function startFaultServer(options: FaultServerOptions = {}): Promise<FaultServer> {
  const fixtures = options.fixtures ?? DEFAULT_FIXTURES;
  const files = new Map<string, Uint8Array>();
  const requests: LiveRequest[] = [];
  const counters = new Map<string, number>();
  const gates = new Map<string, GateState>();
  const watchers = new Set<() => void>();
  const sockets = new Map<Socket, number>();
  let connections = 0;

  const changed = (): void => {
    for (const check of watchers) check();
  };

  async function file(name: string | undefined): Promise<Uint8Array | undefined> {
    if (name === undefined || name.includes('/') || name.startsWith('.')) return undefined;
    const known = files.get(name);
    if (known) return known;
    try {
      const bytes = new Uint8Array(await readFile(new URL(name, fixtures)));
      files.set(name, bytes);
      return bytes;
    } catch {
      return undefined;
    }
  }

  function gate(key: string): GateState {
    let state = gates.get(key);
    if (!state) {
      let onReach: (r: LiveRequest) => void = () => undefined;
      const reached = new Promise<RecordedRequest>((resolve) => (onReach = resolve));
      const created: GateState = {
        reached,
        isOpen: false,
        waiters: [],
        onReach,
        open() {
          created.isOpen = true;
          for (const release of created.waiters.splice(0)) release();
        },
      };
      state = created;
      gates.set(key, state);
    }
    return state;
  }

  /** Sends a file (or padded/virtual body) with Range and query modifiers applied. */
  async function sendFile(ctx: Ctx, name: string | undefined, size?: number): Promise<void> {
    const bytes = await file(name);
    if (!bytes) {
      sendStatus(ctx, 404);
      return;
    }
    const body: Body = { head: bytes, size: size ?? bytes.length };
    const headers: Record<string, string> = { 'content-type': ctx.query.get('type') ?? mime(name) };
    const ignoreRange = options.ignoreRange === true || ctx.query.get('range') === 'ignore';
    if (!ignoreRange) headers['accept-ranges'] = 'bytes';
    const range = ignoreRange ? undefined : parseRange(ctx.record.range, body.size);
    if (range === 'unsatisfiable') {
      ctx.res.writeHead(416, { 'content-range': `bytes */${body.size}` }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: body.size - 1 };
    if (range) headers['content-range'] = `bytes ${start}-${end}/${body.size}`;
    if (ctx.query.get('cl') !== 'omit') headers['content-length'] = String(end - start + 1);
    ctx.res.writeHead(range ? 206 : 200, headers);
    await streamBody(ctx.res, body, start, end, (n) => {
      ctx.record.bytesSent += n;
      changed();
    });
  }

  function sendStatus(ctx: Ctx, status: number): void {
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    const retryAfter = ctx.query.get('retry-after');
    if (retryAfter !== null) headers['retry-after'] = retryAfter;
    ctx.res.writeHead(status, headers).end(`status ${status} ${STATUS_CODES[status] ?? ''}\n`);
  }

  function redirect(ctx: Ctx, location: string): void {
    const status = Number(ctx.query.get('status') ?? 302);
    ctx.res.writeHead(status, { location, 'content-type': 'text/plain' }).end('moved\n');
  }

  const routes: Record<string, Route> = {
    img: (ctx, [name]) => sendFile(ctx, name),
    png: (ctx) => sendFile(ctx, PNG_NAME),
    pad: (ctx, [n, name]) => sendFile(ctx, name, Number(n)),
    status: (ctx, [code]) => {
      sendStatus(ctx, Number(code));
    },
    reason: (ctx, [code]) => {
      const body = 'hostile\n';
      const socket = ctx.req.socket;
      socket.end(
        `HTTP/1.1 ${Number(code)} ${ctx.query.get('text') ?? ''}\r\n` +
          `content-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
        'latin1',
      );
    },
    flaky: (ctx, [n, key, name]) => {
      const path = `${String(n)}/${String(key)}/${String(name)}`;
      const count = (counters.get(path) ?? 0) + 1;
      counters.set(path, count);
      if (count > Number(n)) return sendFile(ctx, name);
      const fail = ctx.query.get('fail') ?? '503';
      if (fail === 'reset') ctx.req.socket.resetAndDestroy();
      else sendStatus(ctx, Number(fail));
      return undefined;
    },
    slow: async (ctx, [bytes, ms, name]) => {
      const head = await file(name);
      if (!head) {
        sendStatus(ctx, 404);
        return;
      }
      ctx.res.writeHead(200, { 'content-length': String(head.length), 'content-type': mime(name) });
      const step = Math.max(1, Number(bytes));
      const timer = setInterval(() => {
        const chunk = head.subarray(ctx.record.bytesSent, ctx.record.bytesSent + step);
        ctx.record.bytesSent += chunk.length;
        if (ctx.record.bytesSent >= head.length) {
          clearInterval(timer);
          ctx.res.end(chunk);
        } else ctx.res.write(chunk);
        changed();
      }, Number(ms));
      ctx.res.on('close', () => {
        clearInterval(timer);
      });
      return undefined;
    },
    hang: () => undefined,
    stall: (ctx, [bytes, name]) => raw(ctx, name, Number(bytes), 'stall'),
    reset: (ctx, [bytes, name]) => raw(ctx, name, Number(bytes), 'reset'),
    truncate: (ctx, [bytes, name]) => raw(ctx, name, Number(bytes), 'end'),
    endless: (ctx, [name]) => {
      ctx.query.set('cl', 'omit');
      ctx.query.set('range', 'ignore');
      return sendFile(ctx, name, ENDLESS_BYTES);
    },
    redirect: (ctx, [n, name]) => {
      const hops = Number(n);
      const file = String(name);
      const next = hops > 1 ? `/redirect/${hops - 1}/${file}` : `/img/${file}`;
      // Relative references resolve against /redirect/<hops>/<file>.
      const relative = hops > 1 ? `../${hops - 1}/${file}` : `../../img/${file}`;
      const location = ctx.query.get('relative') === '1' ? relative : server.url(next);
      redirect(ctx, location + searchOf(ctx.req.url));
    },
    loop: (ctx, [key, side]) => {
      redirect(ctx, server.url(`/loop/${String(key)}/${side === 'a' ? 'b' : 'a'}`));
    },
    'redirect-to': (ctx) => {
      redirect(ctx, ctx.query.get('location') ?? '/');
    },
    html: (ctx) => {
      ctx.res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      ctx.res.end(
        '<!doctype html>\n<html><head><title>Sign in</title></head><body>Log in</body></html>\n',
      );
    },
    gate: async (ctx, [key, ...rest]) => {
      const state = gate(String(key));
      state.onReach(ctx.record);
      if (!state.isOpen) await new Promise<void>((resolve) => state.waiters.push(resolve));
      const [route = '', ...args] = rest;
      if (rest.length === 1) await sendFile(ctx, route);
      else await answer(ctx, route, args);
    },
  };

  async function raw(
    ctx: Ctx,
    name: string | undefined,
    bytes: number,
    then: 'stall' | 'reset' | 'end',
  ) {
    const head = await file(name);
    if (!head) {
      sendStatus(ctx, 404);
      return;
    }
    const body = head.subarray(0, bytes);
    const length = then === 'reset' ? undefined : head.length;
    await sendRaw(ctx.req.socket, length, mime(name), body);
    ctx.record.bytesSent = body.length;
    changed();
    if (then === 'reset') ctx.req.socket.resetAndDestroy();
    else if (then === 'end') ctx.req.socket.end();
  }

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const record: LiveRequest = {
      seq: requests.length,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      range: req.headers.range,
      socket: sockets.get(req.socket) ?? 0,
      at: performance.now(),
      bytesSent: 0,
      state: 'open',
    };
    requests.push(record);
    res.on('close', () => {
      record.state = res.writableFinished ? 'finished' : 'aborted';
      changed();
    });
    changed();
    const [route = '', ...args] = url.pathname.slice(1).split('/').map(decodedOrAsIs);
    answer({ req, res, query: url.searchParams, record }, route, args).catch((error: unknown) => {
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });

  async function answer(ctx: Ctx, route: string, args: string[]): Promise<void> {
    const handler = Object.hasOwn(routes, route) ? routes[route] : undefined;
    if (handler) await handler(ctx, args);
    else sendStatus(ctx, 404);
  }
  http.on('connection', (socket: Socket) => {
    sockets.set(socket, ++connections);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => http.listen(0, host, resolve));
  const { port } = http.address() as AddressInfo;
  const origin = `http://${host}:${port}`;

  const server: FaultServer = {
    origin,
    url: (path) => new URL(path, origin).href,
    requests,
    requestsTo: (prefix) => requests.filter((r) => r.path.startsWith(prefix)),
    get connections() {
      return connections;
    },
    addFile: (name, bytes) => files.set(name, bytes),
    gate,
    until: (predicate) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (!predicate(requests)) return;
          watchers.delete(check);
          resolve();
        };
        watchers.add(check);
        check();
      }),
    reset() {
      requests.length = 0;
      counters.clear();
      for (const state of gates.values()) state.open();
      gates.clear();
    },
    async close() {
      for (const state of gates.values()) state.open();
      for (const socket of sockets.keys()) socket.destroy();
      await new Promise<void>((resolve) =>
        http.close(() => {
          resolve();
        }),
      );
    },
  };
  return server;
}

const MIME: Record<string, string> = {
  bmp: 'image/bmp',
  gif: 'image/gif',
  html: 'text/html; charset=utf-8',
  jpg: 'image/jpeg',
  png: 'image/png',
  svg: 'image/svg+xml',
  tiff: 'image/tiff',
  webp: 'image/webp',
};

/** A path segment decoded, or as sent when it is no valid percent-encoding (`/png/100%`). */
function decodedOrAsIs(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function searchOf(url: string | undefined): string {
  const at = url?.indexOf('?') ?? -1;
  return at < 0 || url === undefined ? '' : url.slice(at);
}

function mime(name: string | undefined): string {
  const ext = name?.split('.').pop() ?? '';
  return MIME[ext] ?? 'application/octet-stream';
}
