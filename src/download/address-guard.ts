/**
 * Which addresses a server that fetches client-given URLs must not reach —
 * loopback, private, link-local, unique-local, CGNAT, cloud metadata and the
 * other non-public ranges, IPv4 and IPv6 (an IPv4-mapped, NAT64 or 6to4
 * address is judged by the IPv4 address it carries) — and an undici
 * connector that enforces it.
 *
 * The check sits where the connection is made, on the address DNS gave, for
 * every hop of a redirect chain: a redirect or a DNS name pointing inwards
 * cannot get past it, a name cannot resolve one way when checked and another
 * when used (DNS rebinding), and no byte is sent before it passes.
 */
import type { LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

import ipaddr from 'ipaddr.js';
import { buildConnector, type Dispatcher } from 'undici';

import { CONNECTOR_RECIPE } from './downloader.js';
import { sharedDnsCache } from './dns-cache.js';
import { DownloadError } from '../utils/errors.js';

/**
 * Judges one IP address: returns what makes it unreachable, as a phrase
 * ("a loopback address"), or undefined when it may be reached.
 */
export type AddressGuard = (address: string, family: number) => string | undefined;

export type AddressGuardOptions = {
  /**
   * Allow every address (`serve --allow-private`).
   * @default false
   */
  readonly allowPrivate?: boolean | undefined;
  /**
   * Exact addresses let through all the same (tests, or one known internal
   * image host).
   * @default []
   */
  readonly allow?: readonly string[] | undefined;
};

/** The policy of `imgjob serve`: only public addresses, unless told otherwise. */
export function createAddressGuard(options: AddressGuardOptions = {}): AddressGuard {
  if (options.allowPrivate) return remember(options, () => undefined);
  const allowed = new Set(options.allow ?? []);
  return remember(options, (address) => {
    if (allowed.has(address)) return undefined;
    const kind = classifyAddress(address);
    return kind === undefined ? undefined : `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind} address`;
  });
}

/**
 * The kind of non-public range an address falls in (`loopback`, `private`,
 * `cloud metadata`, …), or undefined for a public address. Not an IP
 * address at all counts as `invalid`, so a caller's mistake never lets a
 * connection through. The ranges are ipaddr.js's (IANA's special-purpose
 * registries); only the cloud metadata addresses are our own list.
 */
export function classifyAddress(address: string): string | undefined {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    parsed = ipaddr.parse(address.replace(/%.*$/, ''));
  } catch {
    return 'invalid';
  }
  if (CLOUD_METADATA.some((range) => sameFamilyMatch(parsed, range))) return 'cloud metadata';
  if (parsed.kind() === 'ipv6') {
    const inner = embeddedIPv4(parsed as ipaddr.IPv6);
    // The IPv4 address inside decides: public inside is public outside.
    if (inner) return classifyAddress(inner.toString());
  }
  const range = parsed.range();
  return PUBLIC_RANGES.has(range) ? undefined : (RANGE_NAMES[range] ?? range);
}

/** Addresses inside the cloud's own network that hand out credentials. */
const CLOUD_METADATA = [
  '169.254.169.254/32', // AWS, GCP, Azure, OpenStack…
  '169.254.170.2/32', // AWS ECS task metadata
  '100.100.100.200/32', // Alibaba Cloud
  '168.63.129.16/32', // Azure wire server (a public address)
  'fd00:ec2::254/128', // AWS over IPv6
].map((cidr) => ipaddr.parseCIDR(cidr));

/**
 * ipaddr.js's ranges that are reachable on the internet: plain unicast, and
 * anycast services (AS112 DNS sinks, AMT relays, Teredo).
 */
const PUBLIC_RANGES = new Set(['unicast', 'as112', 'as112v6', 'amt', 'teredo']);

/** ipaddr.js's range names, as a message says them. */
const RANGE_NAMES: Readonly<Record<string, string>> = {
  carrierGradeNat: 'CGNAT (shared)',
  linkLocal: 'link-local',
  uniqueLocal: 'unique-local',
  deprecatedSiteLocal: 'site-local',
};

function sameFamilyMatch(
  address: ipaddr.IPv4 | ipaddr.IPv6,
  [network, bits]: [ipaddr.IPv4 | ipaddr.IPv6, number],
): boolean {
  return address.kind() === network.kind() && address.match(network, bits);
}

/**
 * The IPv4 address an IPv6 address carries: IPv4-mapped and -translated,
 * NAT64 (the well-known prefix; the local-use one is private) and 6to4.
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const bytes = address.toByteArray();
  const at = (offset: number): ipaddr.IPv4 => new ipaddr.IPv4(bytes.slice(offset, offset + 4));
  switch (address.range()) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return at(12);
    case 'rfc6052':
      return address.match(NAT64_WELL_KNOWN) ? at(12) : undefined;
    case '6to4':
      return at(2);
    default:
      return undefined;
  }
}

const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

/**
 * The message of a refused connection, naming the way to allow it. It goes
 * to the client that submitted the URL, so for a host name it says only that
 * the name leads inside — never the address or the kind of range — lest the
 * API become a tool to map the server's own name resolution. The detail goes
 * to the server's log (`onRefused`).
 */
export function refusalMessage(host: string, address: string, reason: string): string {
  const what =
    host === address ? `${address} is ${reason}` : `${host} resolves to a private address`;
  return `refused: ${what}; start the server with --allow-private to allow it`;
}

/** The server-side detail of a refusal: what the name resolved to, and why that is refused. */
export function refusalDetail(host: string, address: string, reason: string): string {
  return host === address ? `${address} is ${reason}` : `${host} resolves to ${address}, ${reason}`;
}

/**
 * A DNS lookup that hands back only the addresses `guard` allows, and fails
 * with a refusal when none is left. Honours `all` (Node asks for every
 * address when it races IPv4 against IPv6).
 */
export function guardedLookup(
  guard: AddressGuard,
  lookup: LookupFunction = processLookup,
): LookupFunction {
  return (hostname, options, callback) => {
    lookup(hostname, { ...options, all: true }, (error, found) => {
      if (error) {
        callback(error, '', 0);
        return;
      }
      const addresses = Array.isArray(found) ? found : [{ address: found, family: isIP(found) }];
      const allowed = addresses.filter(
        ({ address, family }) => guard(address, family) === undefined,
      );
      const [first] = allowed;
      const [refused] = addresses;
      if (first !== undefined) {
        if (options.all) callback(null, allowed);
        else callback(null, first.address, first.family);
      } else if (refused !== undefined) {
        const reason = guard(refused.address, refused.family) ?? '';
        callback(new AddressRefusedError(hostname, refused.address, reason), '', 0);
      } else {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = 'ENOTFOUND';
        callback(error, '', 0);
      }
    });
  };
}

export type GuardedConnectorOptions = {
  /** Resolves host names; tests pass a fake one. @default the process's DNS cache */
  readonly lookup?: LookupFunction | undefined;
  /** undici's own connector options (timeouts, TLS). */
  readonly connect?: buildConnector.BuildOptions | undefined;
  /** Told about every refusal, with the detail the client is not told (the server log). */
  readonly onRefused?: ((refused: AddressRefusedError) => void) | undefined;
};

/**
 * An undici connector that opens a connection only to an address `guard`
 * allows. A host given as an IP literal is judged here, since Node skips the
 * lookup for those; a host name is judged on each address DNS returns.
 * A refusal fails the connection with a non-transient `DownloadError`
 * (`E_ADDRESS_REFUSED`) before any packet leaves.
 *
 * A refusal is always told on a later turn of the event loop, never from
 * inside the call: a job of 100k refused URLs would otherwise run from start
 * to end in microtasks and keep every other client waiting.
 */
export function guardedConnector(
  guard: AddressGuard,
  options: GuardedConnectorOptions = {},
): buildConnector.connector {
  const onRefused = options.onRefused ?? (() => undefined);
  const connect = buildConnector({
    ...options.connect,
    lookup: guardedLookup(guard, options.lookup),
  });
  const lookup = options.lookup ?? processLookup;
  const connector: buildConnector.connector = (params, callback) => {
    const family = isIP(params.hostname);
    const reason = family === 0 ? undefined : guard(params.hostname, family);
    if (reason === undefined) {
      connect(params, (...args) => {
        if (args[0] instanceof AddressRefusedError) onRefused(args[0]);
        callback(...args);
      });
      return;
    }
    const refused = new AddressRefusedError(params.hostname, params.hostname, reason);
    onRefused(refused);
    setImmediate(() => {
      callback(refused, null);
    });
  };
  Object.defineProperty(connector, GUARDED, {
    value: { guard, lookup, onRefused } satisfies GuardedBy,
  });
  return withRecipe(connector, guard, options);
}

/** The DNS cache of the process (download threads ask the main thread's). */
const processLookup: LookupFunction = (hostname, options, callback) => {
  sharedDnsCache().lookup(hostname, options, callback);
};

// ---------------------------------------------------------------- through a proxy

const GUARDED = Symbol('imgjob.guardedBy');

/** What a guarded connector checks with: a proxied dispatcher needs the same. */
export type GuardedBy = {
  readonly guard: AddressGuard;
  readonly lookup: LookupFunction;
  readonly onRefused: (refused: AddressRefusedError) => void;
};

export function guardedBy(connect: unknown): GuardedBy | undefined {
  if (typeof connect !== 'function') return undefined;
  return (connect as { [GUARDED]?: GuardedBy })[GUARDED];
}

/**
 * Behind a proxy the proxy opens the connections, so the connector's check
 * never runs: this interceptor resolves each request's host itself and
 * refuses the request, before it goes to the proxy, when ANY of the host's
 * addresses is refused (the proxy may pick any of them). The proxy resolves
 * the name again on its own; a name that changes its answer between the two
 * lookups (DNS rebinding) is the proxy's to stop.
 */
export function guardProxiedTargets({
  guard,
  lookup,
  onRefused,
}: GuardedBy): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (options, handler) => {
    const host = new URL(String(options.origin)).hostname.replace(/^\[|\]$/g, '');
    checkHost(host, guard, lookup).then(
      () => dispatch(options, handler),
      (error: unknown) => {
        if (error instanceof AddressRefusedError) onRefused(error);
        // No controller: the request never started (get-handler reads it so).
        const refuse = handler.onResponseError?.bind(handler) as
          ((controller: undefined, error: Error) => void) | undefined;
        refuse?.(undefined, error as Error);
      },
    );
    return true;
  };
}

function checkHost(host: string, guard: AddressGuard, lookup: LookupFunction): Promise<void> {
  return new Promise((resolve, reject) => {
    const family = isIP(host);
    const judge = (addresses: readonly LookupAddress[]): void => {
      for (const { address, family: kind } of addresses) {
        const reason = guard(address, kind);
        if (reason !== undefined) {
          reject(new AddressRefusedError(host, address, reason));
          return;
        }
      }
      resolve();
    };
    if (family !== 0) {
      judge([{ address: host, family }]);
      return;
    }
    lookup(host, { all: true }, (error, found) => {
      if (error) reject(error);
      else judge(Array.isArray(found) ? found : [{ address: found, family: isIP(found) }]);
    });
  });
}

// ---------------------------------------------------------------- in download threads

/** The options each guard of `createAddressGuard` was made with: a thread can make it again. */
const madeWith = new WeakMap<AddressGuard, AddressGuardOptions>();

function remember(options: AddressGuardOptions, guard: AddressGuard): AddressGuard {
  madeWith.set(guard, { allowPrivate: options.allowPrivate, allow: options.allow });
  return guard;
}

/**
 * How a download thread builds the same guarded connector (see
 * `CONNECTOR_RECIPE`): the guard's options and undici's connect options,
 * both plain data that survives `structuredClone`.
 */
export type ConnectorRecipe = {
  readonly guard: AddressGuardOptions;
  readonly connect: buildConnector.BuildOptions | undefined;
};

/**
 * Marks the connector with how a download thread builds the same one (see
 * `CONNECTOR_RECIPE`): possible for a guard of `createAddressGuard` and the
 * system DNS. Any other (a test's own guard or lookup) keeps the downloads
 * on the main thread.
 */
function withRecipe(
  connector: buildConnector.connector,
  guard: AddressGuard,
  options: GuardedConnectorOptions,
): buildConnector.connector {
  const guardOptions = madeWith.get(guard);
  if (guardOptions === undefined || options.lookup !== undefined) return connector;
  const recipe: ConnectorRecipe = { guard: guardOptions, connect: options.connect };
  Object.defineProperty(connector, CONNECTOR_RECIPE, { value: recipe });
  return connector;
}

/** In a download thread: the guarded connector a recipe describes. */
export function connectorFromRecipe(recipe: ConnectorRecipe): buildConnector.connector {
  return guardedConnector(createAddressGuard(recipe.guard), { connect: recipe.connect });
}

/** A connection the guard refused: final (no retry can change the answer). */
export class AddressRefusedError extends DownloadError {
  /** The address that was refused (kept from the client's message; see `detail`). */
  readonly address: string;
  /** What the host resolved to and why that is refused, for the server's log. */
  readonly detail: string;

  constructor(host: string, address: string, reason: string) {
    super('E_ADDRESS_REFUSED', refusalMessage(host, address, reason), {
      url: host,
      transient: false,
    });
    this.address = address;
    this.detail = refusalDetail(host, address, reason);
  }
}
