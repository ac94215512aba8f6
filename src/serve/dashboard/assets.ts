/**
 * The dashboard's files, from the package itself (`dist/web/`, built by
 * `npm run build`): read once, kept in memory, sent with a strict
 * Content-Security-Policy — the page may load and fetch from its own origin
 * only, and runs no inline script or style.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { packageRoot } from '../../utils/package-root.js';

/** The package's dist/web/, wherever this module was built into. */
export const WEB_DIR = pathToFileURL(`${join(packageRoot(), 'dist', 'web')}/`);

export const CSP = [
  "default-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

type Asset = { readonly body: Buffer; readonly type: string; readonly etag: string };

/** A Map, not an object: `constructor` or `__proto__` must not count as file names. */
const TYPES: ReadonlyMap<string, string> = new Map([
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['app.css', 'text/css; charset=utf-8'],
  ['icon.svg', 'image/svg+xml'],
]);

/** Where the page's token goes in index.html. */
const TOKEN_PLACE = '__IMGJOB_PAGE_TOKEN__';

export class Assets {
  readonly #cache = new Map<string, Asset>();
  readonly #pageToken: (() => string) | undefined;

  /** `pageToken` fills index.html's token in, fresh for every page served. */
  constructor(pageToken?: () => string) {
    this.#pageToken = pageToken;
  }

  /** Whether `name` is one of the dashboard's files. */
  has(name: string): boolean {
    return TYPES.has(name);
  }

  /** Sends a file (304 when the browser holds it already). */
  send(name: string, req: IncomingMessage, res: ServerResponse): void {
    let asset: Asset;
    try {
      asset = this.#load(name);
    } catch {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('imgjob: the dashboard files are missing; build the package (npm run build)\n');
      return;
    }
    if (name === 'index.html' && this.#pageToken) asset = this.#withToken(asset, this.#pageToken());
    const headers = {
      'content-type': asset.type,
      etag: asset.etag,
      // The page itself is never kept: each one carries its own token.
      'cache-control': name === 'index.html' ? 'no-store' : 'public, max-age=300',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
    };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
  }

  #withToken(asset: Asset, token: string): Asset {
    const body = Buffer.from(asset.body.toString('utf8').replace(TOKEN_PLACE, token));
    return { ...asset, body, etag: `"${token.slice(-16)}"` };
  }

  #load(name: string): Asset {
    let asset = this.#cache.get(name);
    if (asset === undefined) {
      const body = readFileSync(new URL(name, WEB_DIR));
      const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
      asset = { body, type: TYPES.get(name) ?? 'application/octet-stream', etag };
      this.#cache.set(name, asset);
    }
    return asset;
  }
}
