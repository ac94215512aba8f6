/**
 * The connection pool of one download thread: an undici `Agent`, or with a
 * proxy undici's `EnvHttpProxyAgent` (no proxy client of our own). Through
 * the proxy, http requests go as absolute-URI requests and https ones
 * through a CONNECT tunnel, as curl sends them; hosts on the no-proxy list
 * are reached directly, through the same connector as without a proxy.
 *
 * What survives the proxy agent: undici's timers; for https, `connections`
 * still caps each origin's pool (a tunnel per connection). For plain http
 * undici keeps one pool to the proxy per origin with no cap of its own: the
 * hosts' turns (hosts.ts) keep every host within `--per-host` all the same.
 * What does not survive: the connector, since the proxy opens the
 * connections; a guarded connector's check moves in front of the proxy
 * (`guardProxiedTargets`), and the DNS cache is not used for proxied hosts
 * (the proxy resolves them).
 */
import { setFlagsFromString } from 'node:v8';

import { Agent, EnvHttpProxyAgent, type buildConnector, type Dispatcher } from 'undici';

import { guardedBy, guardProxiedTargets } from './address-guard.js';
import type { ProxySettings } from './proxy.js';
import { sharedDnsCache } from './dns-cache.js';
import type { LookupFunction } from 'node:net';

export type DispatcherOptions = {
  /** Connections per origin. */
  readonly connections: number;
  /** Connect, headers and body timers: the attempt's deadline. */
  readonly timeoutMs: number;
  readonly proxy: ProxySettings | undefined;
  /** The connector (serve's guard), or undefined for undici's own. */
  readonly connect: buildConnector.connector | undefined;
  /** Name lookups of undici's own connector. @default the process's DNS cache */
  readonly lookup?: LookupFunction | undefined;
};

/**
 * V8's budget before undici's HTTP parser (llhttp, WebAssembly) is compiled
 * again with TurboFan: ~1e9 lasts some 100–200 responses. By default
 * (1.8e6) that happens after the first two, and costs ~120 ms of CPU on a
 * background thread that the process then waits for at exit: as much as the
 * rest of a run of a few images (the runs the tests spawn). After a hundred
 * responses that compilation pays.
 *
 * Set at the first dispatcher, not at start-up: once a flag changes, V8
 * refuses Node's code cache for the built-in modules loaded after it (~10 ms
 * more per process); by now undici and the modules it needs are loaded.
 */
const PARSER_TIERING_BUDGET = 1_000_000_000;
let parserTieringSet = false;

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { connections, timeoutMs, proxy } = options;
  if (!parserTieringSet) {
    // Read when the parser's module is compiled, at the first connection.
    setFlagsFromString(`--wasm-tiering-budget=${PARSER_TIERING_BUDGET}`);
    parserTieringSet = true;
  }
  const lookup = options.lookup ?? sharedDnsCache().lookup;
  const common = {
    connections,
    connect: options.connect ?? { timeout: timeoutMs, lookup },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  };
  if (!proxy) return new Agent(common);
  const agent = new EnvHttpProxyAgent({
    ...common,
    // Given as '' rather than undefined: undici would read the environment again.
    httpProxy: proxy.httpProxy ?? '',
    httpsProxy: proxy.httpsProxy ?? '',
    noProxy: proxy.noProxy,
    proxyTunnel: false,
  });
  const guarded = guardedBy(options.connect);
  return guarded ? agent.compose(guardProxiedTargets(guarded)) : agent;
}
