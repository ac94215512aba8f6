/**
 * The coordinator's `-c`: most stores in flight over the whole cluster, over
 * every job of the run. Never waits: a job takes a free slot when it can and
 * looks again after its next read.
 */
export class Slots {
  readonly #limit: number;
  #free: number;

  constructor(limit: number) {
    this.#limit = limit;
    this.#free = limit;
  }

  get taken(): number {
    return this.#limit - this.#free;
  }

  tryTake(): boolean {
    if (this.#free <= 0) return false;
    this.#free--;
    return true;
  }

  /** Takes a slot even when none is free: a store the queue already runs (re-attached). */
  take(): void {
    this.#free--;
  }

  give(count: number): void {
    this.#free += count;
  }
}
