import { DOWNLOAD_DEFAULTS } from '../download/defaults.js';
import type { ResolvedRunOptions, RunOptions } from '../types.js';
import { withDefaults, type Defaults } from '../utils/with-defaults.js';

/**
 * The default of every run option that has one, in one object: `runJobs` and
 * `startServer` merge it in at their entry, the command line's flags take
 * their defaults from it (so `--help` shows the library's numbers).
 */
export const RUN_DEFAULTS: Defaults<Omit<RunOptions, 'seed' | 'proxy' | 'speedLimit'>> = {
  concurrency: 32,
  gpuDelay: { min: 100, max: 400 },
  failFast: false,
  timeoutMs: DOWNLOAD_DEFAULTS.timeoutMs,
  maxBytes: DOWNLOAD_DEFAULTS.maxBytes,
  retries: DOWNLOAD_DEFAULTS.retries,
  headerOnly: DOWNLOAD_DEFAULTS.headerOnly,
  perHost: DOWNLOAD_DEFAULTS.perHost,
  threads: DOWNLOAD_DEFAULTS.threads,
  retryBaseMs: DOWNLOAD_DEFAULTS.retryBaseMs,
};

/** `options` with the defaults filled in: what the code past the entry reads. */
export function resolveRunOptions(options: RunOptions | undefined): ResolvedRunOptions {
  return withDefaults(options, RUN_DEFAULTS);
}
