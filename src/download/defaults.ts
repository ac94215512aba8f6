import type { Defaults } from '../utils/with-defaults.js';
import type { DownloaderInput } from './downloader.js';

/**
 * Every download limit a caller may leave out, in one place: the downloader
 * merges them in at its entry, the run's defaults and the command line's
 * flags are built from them.
 */
export const DOWNLOAD_DEFAULTS: Defaults<
  Pick<
    DownloaderInput,
    | 'timeoutMs'
    | 'maxBytes'
    | 'retries'
    | 'headerOnly'
    | 'perHost'
    | 'threads'
    | 'maxRedirects'
    | 'retryBaseMs'
    | 'retryMaxMs'
  >
> = {
  timeoutMs: 30_000,
  maxBytes: 50 * 1024 * 1024,
  retries: 3,
  headerOnly: false,
  perHost: 16,
  threads: 1,
  maxRedirects: 5,
  retryBaseMs: 250,
  retryMaxMs: 30_000,
};
