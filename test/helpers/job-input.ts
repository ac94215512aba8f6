/**
 * Test inputs built the way the program builds them: a manifest, through
 * `parseManifest`, so a test's job can never contradict its own manifest.
 */
import { parseManifest } from '../../src/input/manifest.js';
import type { ImageResult, JobInput, ResultOptions } from '../../src/types.js';

/** The options a test job records; tests override only what they are about. */
export function resultOptions(overrides: Partial<ResultOptions> = {}): ResultOptions {
  return {
    gpu_delay: '0',
    seed: 1,
    header_only: false,
    max_bytes: 1000,
    store_master: null,
    ...overrides,
  };
}

/** A job of one visit per store: `stores` maps each store id to its image URLs. */
export function jobInputOf(stores: Record<string, readonly string[]>, source = 'm.json'): JobInput {
  const visits = Object.entries(stores).map(([store_id, image_url]) => ({ store_id, image_url }));
  return parseManifest(JSON.stringify({ count: visits.length, visits }), source);
}

/** A job of `sizes.length` stores `<prefix>S<i>` with `sizes[i]` images `http://h/<prefix>/<i>/<j>`. */
export function jobInputOfSizes(
  sizes: readonly number[],
  prefix = '',
  source = 'm.json',
): JobInput {
  return jobInputOf(
    Object.fromEntries(
      sizes.map((size, index) => [
        `${prefix}S${index}`,
        Array.from({ length: size }, (_, image) => `http://h/${prefix}/${index}/${image}`),
      ]),
    ),
    source,
  );
}

/** A job of `stores` stores `S<i>`, each of `images` images `http://h/<i>/<j>`. */
export function jobInputOfGrid(stores: number, images: number): JobInput {
  return jobInputOf(
    Object.fromEntries(
      Array.from({ length: stores }, (_, index) => [
        `S${index}`,
        Array.from({ length: images }, (_, image) => `http://h/${index}/${image}`),
      ]),
    ),
  );
}

/** A `done` result for `url`: a 2×3 PNG of 1 byte. */
export function doneImage(url: string): Extract<ImageResult, { status: 'done' }> {
  return {
    url,
    status: 'done',
    width: 2,
    height: 3,
    perimeter: 10,
    type: 'png',
    bytes: 1,
    attempts: 1,
    gpu_ms: 0,
    download_ms: 0,
  };
}
