/**
 * The node:http side of the API: request bodies read under a size limit,
 * answers written as JSON, and every unexpected error turned into a plain
 * 500 — a client never sees a stack trace. Also what a server open to a
 * network needs: timeouts for slow clients, a connection cap, a JSON 400 for
 * a malformed request, and the browser guard (Host, Origin).
 */
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';

import { describeError, ImgjobError, InputError } from '../utils/errors.js';
import { canParseUrl } from '../utils/can-parse-url.js';
import type { ApiRequest, ApiResponse } from './api.js';
import { SERVE_DEFAULTS } from './defaults.js';
import type { GuardedRequest, Verdict } from './request-guard.js';

/** Limits on the clients' connections; see SERVE_DEFAULTS for the defaults. */
export type HttpLimits = {
  /** Longest wait for a request's headers (slowloris), in ms. */
  readonly headersTimeoutMs: number;
  /** Longest a whole request may take to arrive, body included, in ms. */
  readonly requestTimeoutMs: number;
  /** How long an idle kept-alive connection stays open, in ms. */
  readonly keepAliveTimeoutMs: number;
  /** Most connections open at once; more are closed at once. */
  readonly maxConnections: number;
};

export type HttpOptions = {
  /** Largest request body accepted, in bytes; a bigger one gets 413. */
  readonly maxBodyBytes: number;
  /** Told about the errors that became a 500. */
  readonly onError: (message: string, error: unknown) => void;
  /** True once shutdown began: answers then close their connection, so none lingers idle. */
  readonly closing?: (() => boolean) | undefined;
  /** Timeouts and the connection cap. @default SERVE_DEFAULTS */
  readonly limits?: Partial<HttpLimits> | undefined;
  /** Judges each request's Host and Origin before anything else. @default lets all through */
  readonly guard?: ((request: GuardedRequest) => Verdict) | undefined;
};

/** The client went away before its request was read (an aborted upload): nobody to answer. */
export class ClientGoneError extends ImgjobError {
  constructor(options?: ErrorOptions) {
    super('E_CLIENT_GONE', 'the client closed the connection before its request was read', options);
  }
}

/** The request body passed the limit. */
export class BodyTooLargeError extends ImgjobError {
  /** The limit, in bytes. */
  readonly limit: number;

  constructor(limit: number) {
    super('E_BODY_TOO_LARGE', `request body over the limit of ${limit} bytes`);
    this.limit = limit;
  }
}

export function createHttpServer(
  api: (request: ApiRequest) => Promise<ApiResponse>,
  options: HttpOptions,
): Server {
  const limits = { ...SERVE_DEFAULTS.http, ...options.limits };
  const server = createServer(
    {
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node looks for expired requests this often (30 s by default): a
      // timeout is only as exact as this.
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(1000, Math.floor(limits.requestTimeoutMs / 4)),
      ),
    },
    (req, res) => {
      void answer(api, req, res, options);
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', answerClientError);
  return server;
}

/**
 * A request node:http could not parse, or that timed out: a short JSON
 * answer and the connection closed — never a stack trace, never a log line
 * (it is the client's doing).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'the request took too long to arrive']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request headers are too large']
        : [400, 'malformed HTTP request'];
  const body = `${JSON.stringify({ error: message })}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

/**
 * Listens on `host:port` (`0` picks a free port) and returns the base URL.
 * @throws {InputError} `E_USAGE` when the address is taken or cannot be used.
 */
export async function listen(server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const reason = error.code === 'EADDRINUSE' ? 'the address is in use' : describeError(error);
      reject(
        new InputError('E_USAGE', `cannot listen on ${host}:${port}: ${reason}`, { cause: error }),
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Expected a TCP address');
  const name = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${name}:${address.port}`;
}

async function answer(
  api: (request: ApiRequest) => Promise<ApiResponse>,
  req: IncomingMessage,
  res: ServerResponse,
  options: HttpOptions,
): Promise<void> {
  const method = req.method ?? 'GET';
  const verdict = options.guard?.({
    method,
    host: req.headers.host,
    origin: req.headers.origin,
  }) ?? { pass: true, headers: {} };
  if (!verdict.pass) {
    // Not read: the connection closes after the answer.
    send(res, {
      ...verdict.response,
      headers: { ...verdict.response.headers, connection: 'close' },
    });
    return;
  }
  const target = requestTarget(req.url ?? '/');
  if (target === undefined) {
    send(res, {
      status: 400,
      headers: { connection: 'close' },
      body: { error: 'malformed request target' },
    });
    return;
  }
  let response: ApiResponse;
  try {
    response = await api({
      method,
      path: target.pathname,
      query: target.searchParams,
      contentType: req.headers['content-type'],
      body: () => readBody(req, options.maxBodyBytes),
      header: (name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value[0] : value;
      },
    });
  } catch (error) {
    if (error instanceof ClientGoneError) {
      res.destroy();
      return;
    }
    if (error instanceof BodyTooLargeError) {
      response = { status: 413, body: { error: error.message }, headers: { connection: 'close' } };
    } else {
      options.onError(`internal error on ${method} ${req.url ?? ''}`, error);
      response = { status: 500, body: { error: 'internal error; see the server log' } };
    }
  }
  if (response.raw) {
    response.raw(req, res);
    return;
  }
  const closing = options.closing?.() ?? false;
  const headers = { ...verdict.headers, ...response.headers };
  send(res, { ...response, headers: closing ? { ...headers, connection: 'close' } : headers });
}

/**
 * The path and query of a request target, or undefined when it is not one
 * (RFC 9112 §3.2). An origin-form target (`/path?q`) is read below a fixed
 * authority, so that `//x` stays a path and never becomes a host; an
 * absolute-form one (`http://host/path`, for proxies) must parse as http(s).
 */
function requestTarget(raw: string): URL | undefined {
  const absolute = !raw.startsWith('/');
  const text = absolute ? raw : `http://localhost${raw}`;
  // URL.parse is newer than Node 20.0.
  if (!canParseUrl(text)) return undefined;
  const url = new URL(text);
  if (absolute && url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  return url;
}

/**
 * The body's bytes (decoded by whoever knows their encoding), refused past `limit` bytes (at once when its
 * Content-Length says so). A refused body is still drained, not cut off:
 * closing the socket under a client that is still sending would make it
 * lose the 413 that explains why.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const announced = Number(req.headers['content-length'] ?? NaN);
    let refused = announced > limit;
    if (refused) reject(new BodyTooLargeError(limit));
    // With a Content-Length (Node's parser holds the body to it) each chunk
    // is copied into one buffer as it comes: joined at the end, the largest
    // submit's 16 MB were one copy that held the event loop ~50 ms. A
    // chunked body is joined at the end.
    const whole =
      Number.isSafeInteger(announced) && !refused ? Buffer.allocUnsafe(announced) : undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      if (size + chunk.length > limit) {
        refused = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
        return;
      }
      if (whole) chunk.copy(whole, size);
      else chunks.push(chunk);
      size += chunk.length;
    });
    req.on('end', () => {
      if (!refused) resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks));
    });
    // An aborted upload or a cut slow body: the client's doing, not an internal error.
    req.on('error', (error) => {
      reject(new ClientGoneError({ cause: error }));
    });
    req.on('close', () => {
      if (!req.complete) reject(new ClientGoneError());
    });
  });
}

function send(res: ServerResponse, response: ApiResponse): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  if (response.body === undefined) {
    res.writeHead(response.status, { 'cache-control': 'no-store', ...response.headers });
    res.end();
    return;
  }
  const text = `${JSON.stringify(response.body)}\n`;
  res.writeHead(response.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...response.headers,
  });
  res.end(text);
}
