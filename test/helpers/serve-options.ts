import type { ServeConfig } from '../../src/serve/server.js';

/**
 * The engine options a test server runs with: no GPU delay, no retries,
 * small limits; a test overrides only what it is about.
 */
export function serveOptions(
  overrides: Partial<ServeConfig['options']> = {},
): ServeConfig['options'] {
  return {
    concurrency: 4,
    gpuDelay: { min: 0, max: 0 },
    retries: 0,
    timeoutMs: 5000,
    maxBytes: 1024 * 1024,
    headerOnly: false,
    perHost: 8,
    ...overrides,
  };
}
