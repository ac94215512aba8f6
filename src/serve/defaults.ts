/** Defaults of `imgjob serve`, apart from the server so `--help` needs no database. */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 16 * 1024 * 1024,
  /** Most stores one submitted job may hold (413 beyond). */
  maxStores: 100_000,
  /** Most images one submitted job may hold (413 beyond). */
  maxImages: 1_000_000,
  /** How long close() lets open requests finish before cutting them. */
  closeGraceMs: 5000,
} as const;
