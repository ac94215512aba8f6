/**
 * Keeps web pages the operator happens to open from using the API. The API
 * has no authentication, so without this any page could POST jobs (a
 * `text/plain` "simple request" skips CORS) and, through DNS rebinding,
 * read every result.
 *
 * - `Host` must name this server: an IP literal (no DNS, so no rebinding),
 *   `localhost` or a `*.localhost` name, the `--host` name, or a name given
 *   with `--allowed-host`. A rebinding page's requests carry its own name.
 * - `Origin`, when a browser sends one, must be the server's own origin
 *   (its dashboard page) or one given with `--allow-origin`; an allowed
 *   cross-origin page also gets CORS answers, preflight included.
 *
 * Clients that are not browsers (curl, scripts) send no Origin and a Host
 * naming the address they reached, so they pass unchanged.
 */
import { isIP } from 'node:net';

import type { ApiResponse } from './api.js';

export type RequestGuardOptions = {
  /** The address or name the server listens on (`--host`). */
  readonly host: string;
  /** More names that `Host` may carry (`--allowed-host`), without a port. */
  readonly allowedHosts?: readonly string[] | undefined;
  /** Cross-origin pages allowed to call the API (`--allow-origin`): `scheme://host[:port]`. */
  readonly allowedOrigins?: readonly string[] | undefined;
};

export type GuardedRequest = {
  readonly method: string;
  readonly host: string | undefined;
  readonly origin: string | undefined;
};

export type Verdict =
  /** Go on; add `headers` (CORS) to the answer. */
  | { readonly pass: true; readonly headers: Readonly<Record<string, string>> }
  /** Answer this instead (a refusal, or a preflight's answer). */
  | { readonly pass: false; readonly response: ApiResponse };

export function createRequestGuard(
  options: RequestGuardOptions,
): (request: GuardedRequest) => Verdict {
  const names = new Set(
    ['localhost', options.host, ...(options.allowedHosts ?? [])].map((name) => name.toLowerCase()),
  );
  const origins = new Set((options.allowedOrigins ?? []).map(normalOrigin));
  return ({ method, host, origin }) => {
    // HTTP/1.0 clients may send no Host; browsers always do.
    if (host !== undefined) {
      const name = hostName(host);
      if (name === undefined || !allowedName(name, names)) {
        return refuse(
          `Host ${JSON.stringify(host)} is not a name of this server; start it with --allowed-host <name> to accept it`,
        );
      }
    }
    if (origin === undefined) return { pass: true, headers: {} };
    const normal = normalOrigin(origin);
    const sameOrigin = host !== undefined && normal === normalOrigin(`http://${host}`);
    if (sameOrigin) return { pass: true, headers: {} };
    if (!origins.has(normal)) {
      return refuse(
        `cross-origin request from ${origin} refused; start the server with --allow-origin ${origin} to allow it`,
      );
    }
    const cors = { 'access-control-allow-origin': origin, vary: 'origin' };
    if (method === 'OPTIONS') {
      return {
        pass: false,
        response: {
          status: 204,
          body: undefined,
          headers: {
            ...cors,
            'access-control-allow-methods': 'GET, HEAD, POST, DELETE',
            'access-control-allow-headers': 'content-type',
            'access-control-max-age': '600',
          },
        },
      };
    }
    return { pass: true, headers: cors };
  };
}

function refuse(error: string): Verdict {
  return { pass: false, response: { status: 403, body: { error } } };
}

function allowedName(name: string, names: ReadonlySet<string>): boolean {
  return isIP(name) !== 0 || names.has(name) || name.endsWith('.localhost');
}

/** The name of a Host header (`[::1]:8080` → `::1`), lower case; undefined when malformed. */
function hostName(host: string): string | undefined {
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(host.trim());
  const name = match?.[1] ?? match?.[2];
  return name?.toLowerCase().replace(/\.$/, '');
}

/** An origin as browsers compare it: lower case, the scheme's default port left out. */
function normalOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    return url.origin.toLowerCase();
  } catch {
    return origin.toLowerCase();
  }
}
