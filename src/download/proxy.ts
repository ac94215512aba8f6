/**
 * Which proxy the downloads go through, decided once on the main thread and
 * handed to every download thread as is (threads and queue workers use the
 * same settings): `--proxy`/`--no-proxy`, else the environment as curl reads
 * it — `http_proxy`, `HTTPS_PROXY`/`https_proxy`, `NO_PROXY`/`no_proxy`, the
 * lowercase form first; `HTTP_PROXY` as well (as undici, wget and npm do).
 *
 * The proxying itself is undici's `EnvHttpProxyAgent`; see `dispatcher.ts`.
 */
import { InputError } from '../utils/errors.js';
import type { ProxySettings } from '../types.js';

export type { ProxySettings };

/** The flags that override the environment. */
export type ProxyFlags = {
  /** `--proxy <url>`: one proxy for http and https; `''` turns the environment's off. */
  readonly proxy?: string | undefined;
  /** `--no-proxy <list>` */
  readonly noProxy?: string | undefined;
};

/**
 * The proxy settings of `flags` over `env`, or undefined when no proxy is
 * set. A proxy URL that cannot be used is an InputError (exit 2) that names
 * where it came from, never its credentials.
 */
export function proxySettings(
  flags: ProxyFlags,
  env: NodeJS.ProcessEnv = process.env,
): ProxySettings | undefined {
  const pick = (...names: string[]): readonly [string, string] | undefined => {
    for (const name of names) {
      const value = env[name];
      if (value !== undefined && value !== '') return [name, value];
    }
    return undefined;
  };
  const given = flags.proxy === undefined ? undefined : (['--proxy', flags.proxy] as const);
  const http = given ?? pick('http_proxy', 'HTTP_PROXY');
  const https = given ?? pick('https_proxy', 'HTTPS_PROXY');
  const httpProxy = http && http[1] !== '' ? checkProxyUrl(...http) : undefined;
  const httpsProxy = https && https[1] !== '' ? checkProxyUrl(...https) : undefined;
  if (httpProxy === undefined && httpsProxy === undefined) return undefined;
  const noProxy = flags.noProxy ?? pick('no_proxy', 'NO_PROXY')?.[1] ?? '';
  return { httpProxy, httpsProxy, noProxy };
}

/** A proxy URL as it may be shown: its password (and user name) replaced. */
export function redactProxy(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return parsed.href;
    parsed.username = '***';
    parsed.password = '';
    return parsed.href;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** `host:port` means `http://host:port`, as curl reads it. */
function checkProxyUrl(source: string, value: string): string {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError('E_USAGE', `${source}: not a proxy URL: ${redactProxy(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InputError(
      'E_USAGE',
      `${source}: expected an http:// or https:// proxy, got ${redactProxy(value)}`,
    );
  }
  return url.href;
}
