import { DownloadError, describeError, isAbortError } from '../utils/errors.js';
import type { Sleep } from '../utils/sleep.js';
import type { ImageResult, Measurement } from '../types.js';

/** Downloads one image and reads its size; rejects with a DownloadError. */
export type FetchImage = (url: string, signal?: AbortSignal) => Promise<Measurement>;

/** What processing an image needs from the outside world. */
export type ProcessDeps = {
  readonly fetchImage: FetchImage;
  readonly sleep: Sleep;
  /** GPU time of the image at this place of the job. */
  readonly gpuDelay: (storeId: string, imageIndex: number) => number;
  readonly now: () => number;
  /** Told of every download's end and every image result (metrics). */
  readonly observer?: ImageObserver | undefined;
};

/**
 * Watches the pipeline for metrics: called on the hot path, so it must be
 * cheap (counters), and it is given only what the pipeline has at hand.
 */
export type ImageObserver = {
  /**
   * A download ended, either way (not when it was aborted): how long it
   * took, and the codes of the attempts that were retried.
   */
  readonly downloaded: (ms: number, retried: readonly string[] | undefined) => void;
  /** An image result, as the store reports it (done, failed or skipped). */
  readonly image: (result: ImageResult) => void;
};

/** Where an image sits in its job: enough to make its GPU delay reproducible. */
export type ImagePlace = { readonly storeId: string; readonly index: number; readonly url: string };

export type FailedImage = Extract<ImageResult, { status: 'failed' }>;
export type DoneImage = Extract<ImageResult, { status: 'done' }>;

/** The first half of processing: download and measure. */
export type Downloaded =
  | { readonly ok: true; readonly measurement: Measurement; readonly downloadMs: number }
  | { readonly ok: false; readonly result: FailedImage };

/** Downloads and measures one image. Only an abort rejects. */
export async function downloadImage(
  place: ImagePlace,
  deps: ProcessDeps,
  signal?: AbortSignal,
): Promise<Downloaded> {
  const started = deps.now();
  try {
    const measurement = await deps.fetchImage(place.url, signal);
    const ms = deps.now() - started;
    deps.observer?.downloaded(ms, measurement.retried);
    return { ok: true, measurement, downloadMs: Math.round(ms) };
  } catch (error) {
    if (isAbortError(error) || signal?.aborted) throw error;
    deps.observer?.downloaded(
      deps.now() - started,
      error instanceof DownloadError ? error.retried : undefined,
    );
    return { ok: false, result: failedImage(place.url, error) };
  }
}

/** The second half: the simulated GPU, then the result to record. */
export async function holdGpu(
  place: ImagePlace,
  downloaded: Extract<Downloaded, { ok: true }>,
  deps: ProcessDeps,
  signal?: AbortSignal,
): Promise<DoneImage> {
  const gpuMs = deps.gpuDelay(place.storeId, place.index);
  await deps.sleep(gpuMs, signal);
  const { width, height, type, bytes, attempts } = downloaded.measurement;
  return {
    url: place.url,
    status: 'done',
    width,
    height,
    perimeter: 2 * (width + height),
    type,
    bytes,
    attempts,
    gpu_ms: gpuMs,
    download_ms: downloaded.downloadMs,
  };
}

function failedImage(url: string, error: unknown): FailedImage {
  if (error instanceof DownloadError) {
    return {
      url,
      status: 'failed',
      error: error.message,
      code: error.code,
      attempts: error.attempts,
    };
  }
  // Not a DownloadError means a bug in the download layer; record it rather
  // than lose the job, but keep it recognisable.
  return {
    url,
    status: 'failed',
    error: `internal error: ${describeError(error)}`,
    code: 'E_INTERNAL',
  };
}
