/** Defaults of `imgjob serve`, apart from the server so `--help` needs no database. */
export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 16 * 1024 * 1024,
  /** How long close() lets open requests finish before cutting them. */
  closeGraceMs: 5000,
} as const;
