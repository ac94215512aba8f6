/**
 * One DNS cache per process: a name is looked up once per TTL, a failure is
 * remembered for a few seconds, and lookups of one name at the same moment
 * share one query. Download threads ask the main thread's cache (see
 * threads/), so the process makes one lookup per name per TTL, not one per
 * thread or per connection.
 *
 * Answers come from c-ares (`dns.Resolver`, `resolve4`/`resolve6` with
 * their TTLs), which runs on the event loop: `dns.lookup` runs getaddrinfo on
 * libuv's 4-thread pool, where lookups would queue behind the file I/O of the
 * results file and the journal, and it says nothing about TTLs. Names c-ares
 * does not know (`localhost`, `/etc/hosts` entries, mDNS) fall back to
 * `dns.lookup`, then are cached for `fallbackTtlMs`.
 *
 * Not undici's `interceptors.dns`: it caches per dispatcher (per thread), it
 * rewrites the request's origin to the IP (so a proxy would be asked for an
 * IP, and the address guard would have to trust the rewrite), and without a
 * custom lookup it too queries through `dns.lookup`.
 */
import { lookup as systemLookup, promises as dnsPromises, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

/** A name's addresses and how long they may be kept. */
export type Resolved = { readonly addresses: readonly LookupAddress[]; readonly ttlMs: number };

/** Looks up one name (tests inject their own; see `systemResolve`). */
export type Resolve = (hostname: string) => Promise<Resolved>;

export type DnsCacheOptions = {
  /** @default systemResolve */
  readonly resolve?: Resolve | undefined;
  /** How long a failed lookup is remembered. @default 5_000 */
  readonly failureTtlMs?: number;
  /** Longest a record is kept, whatever its TTL. @default 300_000 */
  readonly maxTtlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
};

type Entry =
  | { readonly pending: Promise<Resolved> }
  | { readonly until: number; readonly resolved: Resolved }
  | { readonly until: number; readonly error: Error };

export class DnsCache {
  readonly #resolve: Resolve;
  readonly #failureTtlMs: number;
  readonly #maxTtlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #lookups = 0;

  constructor(options: DnsCacheOptions = {}) {
    this.#resolve = options.resolve ?? systemResolve;
    this.#failureTtlMs = options.failureTtlMs ?? 5_000;
    this.#maxTtlMs = options.maxTtlMs ?? 300_000;
    this.#now = options.now ?? Date.now;
  }

  /** Lookups that went past the cache (to DNS) so far. */
  get lookups(): number {
    return this.#lookups;
  }

  /** The addresses of `hostname`, from the cache while its TTL lasts. */
  resolve(hostname: string): Promise<Resolved> {
    const name = hostname.toLowerCase();
    const entry = this.#entries.get(name);
    if (entry) {
      if ('pending' in entry) return entry.pending;
      if (entry.until > this.#now()) {
        return 'error' in entry ? Promise.reject(entry.error) : Promise.resolve(entry.resolved);
      }
    }
    this.#lookups++;
    const pending = this.#resolve(name).then(
      (resolved) => {
        const ttlMs = Math.min(resolved.ttlMs, this.#maxTtlMs);
        this.#entries.set(name, { until: this.#now() + ttlMs, resolved });
        return resolved;
      },
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        this.#entries.set(name, { until: this.#now() + this.#failureTtlMs, error: failure });
        throw failure;
      },
    );
    this.#entries.set(name, { pending });
    return pending;
  }

  /** The cache as the `lookup` of `net.connect` (undici's connector passes it on). */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    lookupVia(this.resolve.bind(this), hostname, options, callback);
  };
}

/** A `net.connect` lookup over any resolve function: honours `family` and `all`. */
export function lookupVia(
  resolve: Resolve,
  hostname: string,
  options: Parameters<LookupFunction>[1],
  callback: Parameters<LookupFunction>[2],
): void {
  resolve(hostname).then(
    ({ addresses }) => {
      const wanted =
        options.family === 4 || options.family === 6
          ? addresses.filter((entry) => entry.family === options.family)
          : addresses;
      const [first] = wanted;
      if (first === undefined) {
        callback(notFound(hostname), '', 0);
      } else if (options.all) {
        callback(null, [...wanted]);
      } else {
        callback(null, first.address, first.family);
      }
    },
    (error: unknown) => {
      callback(error as NodeJS.ErrnoException, '', 0);
    },
  );
}

/** How long a name `dns.lookup` found (no TTL known) is kept. */
const FALLBACK_TTL_MS = 60_000;

let resolver: dnsPromises.Resolver | undefined;

/**
 * The system's DNS through c-ares: A and AAAA records at once, kept for the
 * shortest TTL among them; a name c-ares cannot answer goes to `dns.lookup`.
 */
export async function systemResolve(hostname: string): Promise<Resolved> {
  if (isIP(hostname)) {
    return { addresses: [{ address: hostname, family: isIP(hostname) }], ttlMs: Infinity };
  }
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) return fallback(hostname);
  resolver ??= newResolver();
  const [v4, v6] = await Promise.allSettled([
    resolver.resolve4(hostname, { ttl: true }),
    resolver.resolve6(hostname, { ttl: true }),
  ]);
  const records = [
    ...(v4.status === 'fulfilled' ? v4.value.map((r) => ({ ...r, family: 4 })) : []),
    ...(v6.status === 'fulfilled' ? v6.value.map((r) => ({ ...r, family: 6 })) : []),
  ];
  if (records.length === 0) return fallback(hostname);
  return {
    addresses: records.map(({ address, family }) => ({ address, family })),
    ttlMs: Math.min(...records.map((record) => record.ttl)) * 1000,
  };
}

/**
 * Test and bench seam: `IMGJOB_TEST_DNS_SERVERS=127.0.0.1:5353` makes c-ares
 * ask that server (bench/sim-web.js runs one that counts the queries).
 */
function newResolver(): dnsPromises.Resolver {
  const made = new dnsPromises.Resolver({ timeout: 2_000, tries: 2 });
  const servers = process.env.IMGJOB_TEST_DNS_SERVERS;
  if (servers) made.setServers(servers.split(','));
  return made;
}

function fallback(hostname: string): Promise<Resolved> {
  return new Promise((resolve, reject) => {
    systemLookup(hostname, { all: true }, (error, addresses) => {
      if (error) reject(error);
      else resolve({ addresses, ttlMs: FALLBACK_TTL_MS });
    });
  });
}

function notFound(hostname: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  error.code = 'ENOTFOUND';
  return error;
}

/**
 * The process's cache for downloads that bring none of their own: created on
 * first use. A download thread replaces its resolve with one that asks the
 * main thread's cache (`useResolve`).
 */
let shared: DnsCache | undefined;
let sharedResolve: Resolve | undefined;

export function sharedDnsCache(): DnsCache {
  shared ??= new DnsCache({ resolve: sharedResolve });
  return shared;
}

/** In a download thread, before any download: where the shared cache gets its answers. */
export function useResolve(resolve: Resolve): void {
  sharedResolve = resolve;
  shared = undefined;
}
