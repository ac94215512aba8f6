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
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

import { buildConnector } from 'undici';

import { CONNECTOR_RECIPE, type ConnectorRecipe } from '../download/downloader.js';
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
 * connection through.
 */
export function classifyAddress(address: string): string | undefined {
  const bytes = addressBytes(address);
  if (bytes === undefined) return 'invalid';
  const table = bytes.length === 4 ? IPV4_RANGES : IPV6_RANGES;
  const range = table.find((candidate) => inRange(bytes, candidate));
  if (range === undefined) return undefined;
  if (range.kind !== EMBEDS_IPV4) return range.kind;
  // The IPv4 address inside decides: public inside is public outside.
  const inner = bytes.slice(range.ipv4At, range.ipv4At + 4);
  return IPV4_RANGES.find((candidate) => inRange(inner, candidate))?.kind;
}

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
  lookup: LookupFunction = dnsLookup,
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
  /** Resolves host names; tests pass a fake one. @default dns.lookup */
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
  return withRecipe(connector, guard, options);
}

// ---------------------------------------------------------------- in download threads

/** The options each guard of `createAddressGuard` was made with: a thread can make it again. */
const madeWith = new WeakMap<AddressGuard, AddressGuardOptions>();

function remember(options: AddressGuardOptions, guard: AddressGuard): AddressGuard {
  madeWith.set(guard, { allowPrivate: options.allowPrivate, allow: options.allow });
  return guard;
}

type RecipeOptions = {
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
  const recipe: ConnectorRecipe = {
    // This module, by a name that holds in tsc's output and in the bundle (scripts/bundle.js).
    module: new URL('./address-guard.js', import.meta.url).href,
    exportName: 'connectorFromRecipe',
    options: { guard: guardOptions, connect: options.connect } satisfies RecipeOptions,
  };
  Object.defineProperty(connector, CONNECTOR_RECIPE, { value: recipe });
  return connector;
}

/** In a download thread: the guarded connector a recipe describes. */
export function connectorFromRecipe(options: RecipeOptions): buildConnector.connector {
  return guardedConnector(createAddressGuard(options.guard), { connect: options.connect });
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

// ---------------------------------------------------------------- ranges

/** Marks a range whose addresses carry an IPv4 address at byte `ipv4At`. */
const EMBEDS_IPV4 = 'embeds IPv4';

type Range = {
  readonly prefix: readonly number[];
  readonly bits: number;
  readonly kind: string;
  readonly ipv4At: number;
};

// The first match wins: the specific entries come before the ranges they sit in.
const IPV4_RANGES = ranges([
  ['169.254.169.254/32', 'cloud metadata'], // AWS, GCP, Azure, OpenStack…
  ['169.254.170.2/32', 'cloud metadata'], // AWS ECS task metadata
  ['100.100.100.200/32', 'cloud metadata'], // Alibaba Cloud
  ['168.63.129.16/32', 'cloud metadata'], // Azure wire server (a public address)
  ['0.0.0.0/8', 'unspecified'], // "this network": 0.0.0.0 reaches the local host
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'CGNAT (shared)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF reserved'],
  ['192.0.2.0/24', 'documentation'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'], // 255.255.255.255 (broadcast) included
]);

const IPV6_RANGES = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0/96', EMBEDS_IPV4, 12], // IPv4-mapped
  ['::/96', EMBEDS_IPV4, 12], // IPv4-compatible (deprecated)
  ['64:ff9b::/96', EMBEDS_IPV4, 12], // NAT64
  ['64:ff9b:1::/48', 'private'], // local-use NAT64
  ['100::/64', 'reserved'], // discard-only
  ['2001:db8::/32', 'documentation'],
  ['2002::/16', EMBEDS_IPV4, 2], // 6to4
  ['fd00:ec2::254/128', 'cloud metadata'], // AWS over IPv6
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
]);

function ranges(entries: readonly (readonly [string, string, number?])[]): Range[] {
  return entries.map(([cidr, kind, ipv4At = 0]) => {
    const [address = '', bits = ''] = cidr.split('/');
    const prefix = addressBytes(address);
    if (prefix === undefined) throw new Error(`bad range ${cidr}`);
    return { prefix, bits: Number(bits), kind, ipv4At };
  });
}

function inRange(bytes: readonly number[], range: Range): boolean {
  if (bytes.length !== range.prefix.length) return false;
  for (let bit = 0; bit < range.bits; bit += 8) {
    const mask = (0xff << (8 - Math.min(8, range.bits - bit))) & 0xff;
    const index = bit / 8;
    if (((bytes[index] ?? 0) & mask) !== ((range.prefix[index] ?? 0) & mask)) return false;
  }
  return true;
}

/** 4 bytes for IPv4, 16 for IPv6 (a `%zone` is dropped), undefined for anything else. */
function addressBytes(text: string): number[] | undefined {
  const address = text.replace(/%.*$/, '');
  const family = isIP(address);
  if (family === 4) return address.split('.').map(Number);
  if (family !== 6) return undefined;
  const [head = '', tail] = address.split('::');
  const words = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const left = words(head);
  const right = tail === undefined ? [] : words(tail);
  const gap = new Array<number>(8 - left.length - right.length).fill(0);
  return [...left, ...gap, ...right].flatMap((word) => [word >> 8, word & 0xff]);
}
