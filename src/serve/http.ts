/**
 * The node:http side of the API: request bodies read under a size limit,
 * answers written as JSON, and every unexpected error turned into a plain
 * 500 — a client never sees a stack trace.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import { describeError, InputError } from '../utils/errors.js';
import type { ApiRequest, ApiResponse } from './api.js';

export type HttpOptions = {
  /** Largest request body accepted, in bytes; a bigger one gets 413. */
  readonly maxBodyBytes: number;
  /** Told about the errors that became a 500. */
  readonly onError: (message: string, error: unknown) => void;
  /** True once shutdown began: answers then close their connection, so none lingers idle. */
  readonly closing?: (() => boolean) | undefined;
};

/** The request body passed the limit. */
export class BodyTooLargeError extends Error {
  constructor(limit: number) {
    super(`request body over the limit of ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

export function createHttpServer(
  api: (request: ApiRequest) => Promise<ApiResponse>,
  options: HttpOptions,
): Server {
  return createServer((req, res) => {
    void answer(api, req, res, options);
  });
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
  let response: ApiResponse;
  try {
    const url = new URL(req.url ?? '/', 'http://localhost');
    response = await api({
      method,
      path: url.pathname,
      query: url.searchParams,
      body: () => readBody(req, options.maxBodyBytes),
    });
  } catch (error) {
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
  send(
    res,
    closing ? { ...response, headers: { ...response.headers, connection: 'close' } } : response,
  );
}

/**
 * The body as text, refused past `limit` bytes (at once when its
 * Content-Length says so). A refused body is still drained, not cut off:
 * closing the socket under a client that is still sending would make it
 * lose the 413 that explains why.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = Number(req.headers['content-length'] ?? 0);
    let refused = size > limit;
    if (refused) reject(new BodyTooLargeError(limit));
    size = 0;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        chunks.length = 0;
        reject(new BodyTooLargeError(limit));
      } else {
        chunks.push(chunk);
      }
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, response: ApiResponse): void {
  if (res.headersSent) {
    res.destroy();
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
