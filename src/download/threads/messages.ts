/**
 * What the main thread and a download thread say to each other: small
 * messages, never image bytes. A download goes out as its URL and comes back
 * as its measurement (or its error, flattened).
 */
import type { ConnectorRecipe, DownloaderOptions } from '../downloader.js';
import type { ErrorData } from '../errors.js';
import type { Measurement } from '../../types.js';

/** The thread's start-up data: its share of the limits, and how to build its connector. */
export type ThreadInit = {
  readonly options: Omit<DownloaderOptions, 'connect' | 'threads'>;
  readonly recipe: ConnectorRecipe | undefined;
};

export type ToThread =
  | { readonly type: 'fetch'; readonly id: number; readonly url: string }
  /** The caller gave up on download `id`: stop it (its answer is no longer read). */
  | { readonly type: 'abort'; readonly id: number };

export type FromThread =
  | { readonly id: number; readonly ok: true; readonly measurement: Measurement }
  | { readonly id: number; readonly ok: false; readonly error: ErrorData };

/**
 * Messages go in batches: what one side has to say in one turn of its event
 * loop is one `postMessage`, so a busy pool wakes the other thread once per
 * batch rather than once per image.
 */
export type Batch<T> = readonly T[];
