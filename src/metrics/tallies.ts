/**
 * What a process counts for its metrics, as plain numbers: the pipeline
 * calls in once per download and per image result (ImageObserver), the
 * results writer once per save. Nothing here loads prom-client: a command
 * keeps tallies at a few increments per image, and only a scrape turns them
 * into the exposition format (exposition.ts, loaded then).
 */
import type { ImageResult } from '../types.js';
import { BucketTally } from './bucket-tally.js';

/** Image statuses the pipeline reports (pending is never a result). */
export const IMAGE_STATUSES = ['done', 'failed', 'skipped'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

/** Seconds: a cached small image takes milliseconds, a slow host the whole 30 s timeout. */
export const DOWNLOAD_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: a small job's snapshot takes a millisecond, 100k images' a second or more. */
export const SAVE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class Tallies {
  readonly images: Record<ImageStatus, number> = { done: 0, failed: 0, skipped: 0 };
  bytes = 0;
  gpuSeconds = 0;
  /** Retried attempts by error code (a bounded set: ErrorCode). */
  readonly retries = new Map<string, number>();
  readonly downloads = new BucketTally(DOWNLOAD_BUCKETS);
  readonly saves = new BucketTally(SAVE_BUCKETS);
  /** Stores this process runs now (a worker's; run and serve read their jobs' states instead). */
  storesRunning = 0;

  /** ImageObserver: a download ended, after `ms`, having retried attempts that failed with `retried`. */
  readonly downloaded = (ms: number, retried: readonly string[] | undefined): void => {
    this.downloads.observe(ms / 1000);
    if (retried === undefined) return;
    for (const code of retried) this.retries.set(code, (this.retries.get(code) ?? 0) + 1);
  };

  /** ImageObserver: a result the pipeline reported. */
  readonly image = (result: ImageResult): void => {
    if (result.status === 'pending') return;
    this.images[result.status]++;
    if (result.status !== 'done') return;
    this.bytes += result.bytes;
    this.gpuSeconds += result.gpu_ms / 1000;
  };

  /** A results file (run) or a database batch (serve) was saved in `ms`. */
  readonly saved = (ms: number): void => {
    this.saves.observe(ms / 1000);
  };
}
