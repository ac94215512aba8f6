/**
 * How far V8 lets the heap grow past its live set before a full collection
 * (`--heap-growing-percent`), chosen per job at its start.
 *
 * A job of big images allocates its socket reads as fast as it downloads
 * (a 64 KiB ArrayBuffer per read, ~2.4 GB for 4,096 photos), while its live
 * set is a few MB. Left to itself, V8 keeps the old generation's limit only
 * ~35 MB above that live set, less than the young generation those reads
 * grow to, so it starts a full collection every ~200 ms: ~50 of them in a
 * W3 run, a quarter of its CPU. Room of `HEADROOM_BYTES` above the live set
 * leaves 2–5 (BENCHMARKS.md, "W3 threads").
 *
 * A huge job keeps ~0.4 KB of results per image alive and makes much
 * short-lived garbage around it: growth of 1.5× keeps 100k images under
 * 200 MB of RSS for a few percent more GC time.
 */

/** From this many images a job keeps its heap tight. */
export const TIGHT_FROM_IMAGES = 50_000;
/** A tight heap's growth: 1.5× the live set. */
export const TIGHT_PERCENT = 50;
/** What a smaller job may hold above its live set before a full collection. */
export const HEADROOM_BYTES = 128 * 1024 * 1024;
/** V8's own largest factor (4×): a smaller job never grows tighter than that. */
const MIN_PERCENT = 300;
/** At most 10× the live set, however small it is. */
const MAX_PERCENT = 900;

/**
 * The `--heap-growing-percent` for a job of `images` images whose process
 * holds `heapUsed` bytes of heap as it starts.
 */
export function heapGrowingPercent(images: number, heapUsed: number): number {
  if (images >= TIGHT_FROM_IMAGES) return TIGHT_PERCENT;
  const wanted = Math.ceil((100 * HEADROOM_BYTES) / Math.max(heapUsed, 1));
  return Math.min(MAX_PERCENT, Math.max(MIN_PERCENT, wanted));
}
