/**
 * What the job page may do besides reading: cancel a job, take its failed
 * stores up again. Both are POSTs that a web page must not be able to make
 * on the operator's behalf, so each must come from the dashboard page itself:
 *
 * - same origin: the browser's `Origin` names this server (the `Host` it was
 *   asked by), or, without one, `Sec-Fetch-Site: same-origin`. Pages allowed
 *   with `--allow-origin` may read the API, not act through the dashboard.
 * - a page token: every dashboard page is served with its own token (an
 *   HMAC of a fresh nonce under a key made at start, so nothing is stored),
 *   sent back in `X-Imgjob-Token`. A custom header also makes a cross-origin
 *   fetch need a CORS preflight, which this server never grants for these.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import type { ApiRequest } from '../api.js';

/** How long a page's token stays good: a dashboard left open for a day still acts. */
const TOKEN_LIFE_MS = 24 * 60 * 60 * 1000;
export const TOKEN_HEADER = 'x-imgjob-token';

export class PageTokens {
  readonly #key = randomBytes(32);
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** A token for one page: `<issued ms, base 36>.<nonce>.<mac>`. */
  issue(): string {
    const nonce = `${this.#now().toString(36)}.${randomBytes(12).toString('base64url')}`;
    return `${nonce}.${this.#mac(nonce)}`;
  }

  valid(token: string | undefined): boolean {
    if (token === undefined) return false;
    const cut = token.lastIndexOf('.');
    if (cut < 0) return false;
    const nonce = token.slice(0, cut);
    const mac = Buffer.from(token.slice(cut + 1));
    const expected = Buffer.from(this.#mac(nonce));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return false;
    const issued = parseInt(nonce.split('.')[0] ?? '', 36);
    return Number.isFinite(issued) && this.#now() - issued < TOKEN_LIFE_MS;
  }

  #mac(nonce: string): string {
    return createHmac('sha256', this.#key).update(nonce).digest('base64url');
  }
}

/** Why a request may not act (a sentence for the 403), or undefined when it may. */
export function actionRefusal(request: ApiRequest, tokens: PageTokens): string | undefined {
  const header = request.header ?? (() => undefined);
  const origin = header('origin');
  const host = header('host');
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (host === undefined || originHost?.toLowerCase() !== host.toLowerCase())
      return `this action is taken from the dashboard page of this server only, not from ${origin}`;
  } else if (header('sec-fetch-site') !== 'same-origin') {
    return 'this action is taken from the dashboard page only (no Origin sent); scripts cancel with DELETE /api/jobs/<id>';
  }
  if (!tokens.valid(header(TOKEN_HEADER)))
    return 'the page token is missing or out of date; reload the page and try again';
  return undefined;
}
