// @ts-check
/**
 * A tiny static file server over one folder, for the demo and the tests:
 * GET and HEAD, Content-Type by extension, Content-Length, one
 * `Range: bytes=a-b` (206/416), keep-alive, and `/status/<code>` answering
 * that code. Paths that climb out of the folder are refused (403).
 */
import { Buffer } from 'node:buffer';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, STATUS_CODES } from 'node:http';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream';

/**
 * @typedef {object} FixtureServer
 * @property {string} origin `http://host:port`, without a trailing slash.
 * @property {() => Promise<void>} close Stops listening and ends every open
 *   connection, idle keep-alive ones included. Calling it again is harmless.
 */

/** @type {Readonly<Record<string, string>>} */
const CONTENT_TYPES = {
  '.bmp': 'image/bmp',
  '.csv': 'text/csv; charset=utf-8',
  '.gif': 'image/gif',
  '.html': 'text/html; charset=utf-8',
  '.jpeg': 'image/jpeg',
  '.jpg': 'image/jpeg',
  '.json': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.txt': 'text/plain; charset=utf-8',
  '.webp': 'image/webp',
};

/**
 * Serves `root` over HTTP until `close()` is called.
 *
 * @param {string} root Folder to serve.
 * @param {{ host?: string, port?: number }} [options] `port: 0` (the default)
 *   picks a free port.
 * @returns {Promise<FixtureServer>}
 */
export async function startFixtureServer(root, { host = '127.0.0.1', port = 0 } = {}) {
  const base = resolve(root);
  const server = createServer((req, res) => {
    handle(base, req, res).catch((/** @type {unknown} */ error) => {
      if (res.headersSent) res.destroy(error instanceof Error ? error : undefined);
      else send(res, 500);
    });
  });
  await new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      done(undefined);
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Expected a TCP address');
  const hostname = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  /** @type {Promise<void> | undefined} */
  let closing;
  return {
    origin: `http://${hostname}:${address.port}`,
    close: () =>
      (closing ??= new Promise((done, fail) => {
        server.close((error) => {
          if (error) fail(error);
          else done();
        });
        server.closeAllConnections();
      })),
  };
}

/**
 * @param {string} base
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 */
async function handle(base, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, { Allow: 'GET, HEAD' });
    return;
  }
  const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
  const status = /^\/status\/(\d{3})$/.exec(rawPath);
  if (status) {
    const code = Number(status[1]);
    send(res, code >= 200 && code <= 599 ? code : 400);
    return;
  }
  const file = resolveInside(base, rawPath);
  if (file === undefined) {
    send(res, 403);
    return;
  }
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    send(res, 404);
    return;
  }
  const size = info.size;
  const headers = {
    'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
  };
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    send(res, 416, { 'Content-Range': `bytes */${size}` });
    return;
  }
  if (range) {
    res.writeHead(206, {
      ...headers,
      'Content-Length': range.end - range.start + 1,
      'Content-Range': `bytes ${range.start}-${range.end}/${size}`,
    });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': size });
  }
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  // pipeline() also ends the file stream when the client goes away mid-body.
  pipeline(createReadStream(file, range ?? {}), res, () => {});
}

/**
 * The file a request path names, or `undefined` when it leaves `base`.
 *
 * @param {string} base
 * @param {string} rawPath
 * @returns {string | undefined}
 */
function resolveInside(base, rawPath) {
  let path;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    return undefined;
  }
  if (path.includes('\0') || path.split(/[/\\]/).includes('..')) return undefined;
  const file = join(base, path);
  const rel = relative(base, file);
  return rel.startsWith('..') || isAbsolute(rel) ? undefined : file;
}

/**
 * One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, clamped to the file. A
 * missing, malformed or multi-part Range header is ignored (whole file), as
 * RFC 9110 allows.
 *
 * @param {string | undefined} header
 * @param {number} size
 * @returns {{ start: number, end: number } | 'unsatisfiable' | undefined}
 */
export function parseRange(header, size) {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    return suffix === 0 || size === 0
      ? 'unsatisfiable'
      : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  return start >= size ? 'unsatisfiable' : { start, end };
}

/**
 * An answer that is only a status, with a short text body naming it (none
 * for 204 and 304, which must not have one).
 *
 * @param {import('node:http').ServerResponse} res
 * @param {number} code
 * @param {Record<string, string>} [headers]
 */
function send(res, code, headers = {}) {
  if (code === 204 || code === 304) {
    res.writeHead(code, headers).end();
    return;
  }
  const body = `${code} ${STATUS_CODES[code] ?? 'Status'}\n`;
  res.writeHead(code, {
    ...headers,
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
