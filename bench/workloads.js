// @ts-check
/**
 * The benchmark workloads: their manifests (seeded, so every run of the
 * bench sees the same stores) and the imgjob options they run with.
 */
import { imagePath } from './catalog.js';

/** @typedef {import('./catalog.js').Catalog} Catalog */
/** @typedef {import('./catalog.js').ImageSet} ImageSet */
/** @typedef {{ store_id: string, image_url: string[], visit_time: string }} Visit */
/** @typedef {{ count: number, visits: Visit[] }} Manifest */
/** @typedef {'W1' | 'W1m' | 'W2' | 'W3' | 'W3m' | 'W4' | 'W5' | 'W5m' | 'W6'} WorkloadId */

/**
 * @typedef {object} Workload
 * @property {WorkloadId} id
 * @property {string} title
 * @property {ImageSet} set The image files its URLs point at.
 * @property {readonly number[]} storeSizes Images per store, in manifest order.
 * @property {number} gpuDelayMs
 * @property {number} machines The `-c` it runs with.
 * @property {readonly string[]} options imgjob `run` options (besides manifest, -o, --force, --json).
 * @property {WorkloadId} [manifestOf] Runs on another workload's manifest.
 * @property {readonly number[]} [smallSizes] W6: the smaller job it compares with (its first stores).
 */

/** @type {readonly WorkloadId[]} */
export const WORKLOAD_IDS = ['W1', 'W1m', 'W2', 'W3', 'W3m', 'W4', 'W5', 'W5m', 'W6'];

/** Visits hold at most this many images; a store's visits are consecutive. */
const VISIT_IMAGES = 20;

/**
 * The workloads, full size or `quick` (smaller, for a try-out).
 *
 * @param {boolean} quick
 * @returns {Record<WorkloadId, Workload>}
 */
export function defineWorkloads(quick) {
  const random = mulberry32(20_240_415);
  const w1Sizes = Array.from(
    { length: quick ? 50 : 200 },
    () => 1 + Math.floor(random() * (quick ? 20 : 50)),
  );
  const small = Array.from({ length: quick ? 100 : 400 }, () => 1 + Math.floor(random() * 5));
  const big = Array.from({ length: 4 }, () => (quick ? 50 : 200));
  // 6,144 images: enough that process start-up (~0.25 s) does not swamp a 2–5 s run.
  const w3Sizes = Array.from({ length: quick ? 32 : 384 }, () => 16);
  const w4Sizes = Array.from({ length: quick ? 100 : 1000 }, () => 100);
  // The realistic mix (~0.58 MB a photo): 4,096 images are 2.4 GB, a few seconds.
  const w3mSizes = Array.from({ length: quick ? 32 : 256 }, () => 16);
  const w1mSizes = Array.from({ length: quick ? 50 : 200 }, () => 20);
  const fast = ['--gpu-delay', '0', '-c', '64', '--per-host', '64'];
  // Growth: the same tiny image, 100 per store, at 100k and 1M images (quick: 10k and 100k).
  const w6Sizes = Array.from({ length: quick ? 1_000 : 10_000 }, () => 100);
  const w6Small = w6Sizes.slice(0, w6Sizes.length / 10);
  return {
    W1: {
      id: 'W1',
      title: 'sleep-bound',
      set: 'thumb',
      storeSizes: w1Sizes,
      gpuDelayMs: 100,
      machines: w1Sizes.length + 56,
      options: ['--gpu-delay', '100', '-c', String(w1Sizes.length + 56)],
    },
    W1m: {
      id: 'W1m',
      title: 'sleep-bound, photo mix',
      set: 'mix',
      storeSizes: w1mSizes,
      gpuDelayMs: 100,
      machines: 256,
      options: ['--gpu-delay', '100', '-c', '256'],
    },
    W2: {
      id: 'W2',
      title: 'skewed, capped',
      set: 'thumb',
      storeSizes: [...small, ...big],
      gpuDelayMs: 100,
      machines: 64,
      options: ['--gpu-delay', '100', '-c', '64'],
    },
    W3: {
      id: 'W3',
      title: 'throughput',
      set: 'img',
      storeSizes: w3Sizes,
      gpuDelayMs: 0,
      machines: 64,
      options: fast,
    },
    W3m: {
      id: 'W3m',
      title: 'throughput, photo mix',
      set: 'mix',
      storeSizes: w3mSizes,
      gpuDelayMs: 0,
      machines: 64,
      options: fast,
    },
    W4: {
      id: 'W4',
      title: 'scale',
      set: 'thumb',
      storeSizes: w4Sizes,
      gpuDelayMs: 0,
      machines: 64,
      options: fast,
    },
    W5: {
      id: 'W5',
      title: 'header-only',
      set: 'img',
      storeSizes: w3Sizes,
      gpuDelayMs: 0,
      machines: 64,
      options: [...fast, '--header-only'],
      manifestOf: 'W3',
    },
    W5m: {
      id: 'W5m',
      title: 'header-only, photo mix',
      set: 'mix',
      storeSizes: w3mSizes,
      gpuDelayMs: 0,
      machines: 64,
      options: [...fast, '--header-only'],
      manifestOf: 'W3m',
    },
    W6: {
      id: 'W6',
      title: 'growth',
      set: 'thumb',
      storeSizes: w6Sizes,
      smallSizes: w6Small,
      gpuDelayMs: 0,
      machines: 256,
      options: ['--gpu-delay', '0', '-c', '256', '--per-host', '64'],
    },
  };
}

/**
 * The manifest of a workload: store `i` is `S<8 digits>`, its images split
 * into visits of up to 20, every image a URL of its own.
 *
 * @param {Workload} workload
 * @param {Catalog} catalog
 * @param {string} origin
 * @returns {Manifest}
 */
export function manifestOf(workload, catalog, origin) {
  /** @type {Visit[]} */
  const visits = [];
  let n = 0;
  const start = Date.parse('2024-11-15T08:00:00Z');
  workload.storeSizes.forEach((size, store) => {
    const storeId = `S${String(10_000_000 + store).padStart(8, '0')}`;
    for (let first = 0; first < size; first += VISIT_IMAGES) {
      const image_url = [];
      for (let i = first; i < Math.min(size, first + VISIT_IMAGES); i++) {
        image_url.push(`${origin}${imagePath(catalog, workload.set, n++)}`);
      }
      const visit_time = new Date(start + visits.length * 60_000).toISOString();
      visits.push({ store_id: storeId, image_url, visit_time });
    }
  });
  return { count: visits.length, visits };
}

/**
 * Every image URL of a manifest, in manifest order.
 *
 * @param {Manifest} manifest
 * @returns {string[]}
 */
export function urlsOf(manifest) {
  return manifest.visits.flatMap((visit) => visit.image_url);
}

/**
 * A small seeded PRNG (mulberry32): uniform floats in [0, 1).
 *
 * @param {number} seed
 * @returns {() => number}
 */
export function mulberry32(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
