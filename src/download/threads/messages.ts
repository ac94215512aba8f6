/**
 * What the main thread and a download thread say to each other: small
 * messages, never image bytes. An attempt goes out as its URL and comes back
 * as its measurement (or its error, flattened); a thread asks the main
 * thread's DNS cache for names, and tells which of its attempts run long.
 */
import type { InFlight } from '../attempt.js';
import type { Resolved } from '../dns-cache.js';
import type { ErrorData } from '../errors.js';
import type { Measured } from '../measure.js';

export type ToThread =
  /** Run one attempt (no retry: the main thread retries). */
  | { readonly type: 'fetch'; readonly id: number; readonly url: string }
  /** The caller gave up on attempt `id`: stop it (its answer is no longer read). */
  | { readonly type: 'abort'; readonly id: number }
  /** The answer to lookup `id`. */
  | {
      readonly type: 'resolved';
      readonly id: number;
      readonly resolved: Resolved | undefined;
      readonly error: { readonly message: string; readonly code: string | undefined } | undefined;
    };

export type FromThread =
  | { readonly type: 'done'; readonly id: number; readonly measured: Measured }
  | { readonly type: 'failed'; readonly id: number; readonly error: ErrorData }
  | { readonly type: 'lookup'; readonly id: number; readonly hostname: string }
  /** The thread's attempts running for a while (sent once a second while there are any). */
  | { readonly type: 'slow'; readonly attempts: readonly InFlight[] };

/**
 * Messages go in batches: what one side has to say in one turn of its event
 * loop is one `postMessage`, so a busy pool wakes the other thread once per
 * batch rather than once per image.
 */
export type Batch<T> = readonly T[];
