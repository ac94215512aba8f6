/** Defaults of `imgjob serve`, apart from the server so `--help` needs no database. */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 16 * 1024 * 1024,
  /** Most stores one submitted job may hold (413 beyond). */
  maxStores: 100_000,
  /** Most images one submitted job may hold (413 beyond). */
  maxImages: 1_000_000,
  /** Timeouts and the connection cap of the HTTP server. */
  http: {
    /** A client has this long to send its request headers (slowloris). */
    headersTimeoutMs: 10_000,
    /** A whole request, body included, must arrive within this (a 16 MiB body at ~300 KB/s). */
    requestTimeoutMs: 60_000,
    /** An idle kept-alive connection is closed after this. */
    keepAliveTimeoutMs: 5_000,
    /** Most connections open at once; more are closed at once. */
    maxConnections: 1024,
  },
  /**
   * The event streams' own budget, apart from the API's connections: past
   * it 429. The total never passes half of `http.maxConnections`, so the
   * API and /healthz always have connections left.
   */
  streams: {
    /** Most streams one client address may hold. */
    maxPerClient: 16,
    /** Most streams over all clients. */
    max: 256,
    /** A stream open this long is ended (the browser reconnects with its Last-Event-ID). */
    maxAgeMs: 10 * 60_000,
  },
  /** How long close() lets open requests finish before cutting them. */
  closeGraceMs: 5000,
} as const;
