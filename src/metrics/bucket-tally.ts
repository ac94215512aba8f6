/**
 * A histogram's counts, kept the cheap way: `observe` is a few comparisons
 * and increments into a preallocated array, no object per call (prom-client's
 * own `observe` builds a label object each time, and this runs per image).
 * The registry reads it at scrape time (exposition.ts).
 */
export class BucketTally {
  /** Upper bounds, in increasing order (the `le` labels; `+Inf` is implied). */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last slot is above every bound. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let index = 0;
    while (index < this.bounds.length && value > (this.bounds[index] ?? Infinity)) index++;
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#sum += value;
    this.#count++;
  }

  get sum(): number {
    return this.#sum;
  }

  get count(): number {
    return this.#count;
  }

  /** Cumulative counts, one per bound (what `_bucket{le=…}` shows); `count` is `+Inf`'s. */
  cumulative(): number[] {
    let running = 0;
    return this.bounds.map((_, index) => (running += this.#counts[index] ?? 0));
  }
}
