/**
 * A snapshot of a job's results and its text. Taking one copies the image
 * columns (a few MB for a million images) and the store heads, so the job
 * runs on while it is written; its text is then spelled from those columns
 * a piece at a time, straight into bytes: a million images never become a
 * million objects, nor 180 MB of text held at once.
 */
import { ByteText } from './byte-text.js';
import type { ImageTable } from './image-table.js';
import type { ResultsDocument, StoreResult, StoreStatus } from '../types.js';
import { FINISHED_STORE_STATUSES } from '../shared/job-rules.js';

/** Jobs up to this many images are written indented, for people to read. */
const INDENTED_MAX_IMAGES = 5000;

/** About the size of each piece of a big job's text. */
const PIECE_BYTES = 1 << 20;

/**
 * The text of stores that have ended, kept from one snapshot to the next up
 * to a budget, so a snapshot of a 100k-image job spells only the stores in
 * flight. Each text is kept with the store's version (its count of
 * changes, see JobState): one spelled from an older version is never used.
 */
export class StoreTextCache {
  readonly #texts = new Map<number, { readonly version: number; readonly bytes: Buffer }>();
  readonly #budget: number;
  #bytes = 0;

  /** @param budget Most bytes kept: 32 MiB holds the whole text of ~180k images. */
  constructor(budget = 32 << 20) {
    this.#budget = budget;
  }

  get(store: number, version: number): Buffer | undefined {
    const kept = this.#texts.get(store);
    return kept?.version === version ? kept.bytes : undefined;
  }

  /** Keeps a copy of `bytes` as the text of `store` at `version`, if the budget has room. */
  offer(store: number, version: number, bytes: Uint8Array): void {
    const kept = this.#texts.get(store);
    const room = this.#budget - this.#bytes + (kept?.bytes.length ?? 0);
    if (bytes.length > room) return;
    this.#bytes += bytes.length - (kept?.bytes.length ?? 0);
    this.#texts.set(store, { version, bytes: Buffer.from(bytes) });
  }
}

/** The fields a writer adds to a snapshot. */
export type SnapshotExtra = Partial<
  Pick<ResultsDocument, 'writer' | 'interrupted' | 'finished_at' | 'queue' | 'network'>
>;

/**
 * A store as the document spells it, but for its images: `images` holds
 * their number, in the place the key takes among the others.
 */
export type StoreHead = {
  readonly store_id: string;
  readonly status: StoreStatus;
  readonly error?: string;
  readonly visit_times?: readonly string[];
  readonly images: number;
};

export class JobSnapshot {
  readonly #header: Omit<ResultsDocument, 'stores'>;
  readonly #stores: readonly StoreHead[];
  readonly #first: Uint32Array;
  readonly #images: ImageTable;
  readonly #versions: Uint32Array;

  /**
   * @param first Where each store's images start in `images`.
   * @param versions Each store's count of changes. None of these may
   * change afterwards (JobState hands copies).
   */
  constructor(
    header: Omit<ResultsDocument, 'stores'>,
    stores: readonly StoreHead[],
    first: Uint32Array,
    images: ImageTable,
    versions: Uint32Array,
  ) {
    this.#header = header;
    this.#stores = stores;
    this.#first = first;
    this.#images = images;
    this.#versions = versions;
  }

  /** The document but for its stores. */
  get header(): Omit<ResultsDocument, 'stores'> {
    return this.#header;
  }

  /** The document as objects (a small job's indented text, and readers of whole results). */
  toDocument(): ResultsDocument {
    const stores = this.#stores.map((store, index): StoreResult => {
      const first = this.#first[index] as number;
      const images = Array.from({ length: store.images }, (_, i) => this.#images.get(first + i));
      // Spread over the head: `images` keeps its place among the keys.
      return { ...store, images };
    });
    return { ...this.#header, stores };
  }

  /**
   * The text of the results file, a piece at a time. Each piece is valid
   * only until the next is asked for: write it first. `cache` gives and
   * keeps the text of ended stores.
   */
  *pieces(cache?: StoreTextCache): Generator<Buffer> {
    if (this.#header.counts.images <= INDENTED_MAX_IMAGES) {
      yield Buffer.from(`${JSON.stringify(this.toDocument(), null, 2)}\n`);
      return;
    }
    const text = new ByteText(PIECE_BYTES + (64 << 10));
    text.text(`${JSON.stringify(this.#header).slice(0, -1)},"stores":[\n`);
    for (const [index, store] of this.#stores.entries()) {
      if (index > 0) text.ascii(',\n');
      const version = this.#versions[index] as number;
      const cached = cache?.get(index, version);
      if (cached !== undefined) text.raw(cached);
      else {
        // A store's text is kept only when it is all in one piece.
        let start: number | undefined = text.length;
        for (const full of this.#storeText(text, index, store)) {
          if (full) {
            yield text.bytes;
            text.clear();
            start = undefined;
          }
        }
        if (start !== undefined && FINISHED_STORE_STATUSES.has(store.status))
          cache?.offer(index, version, text.bytes.subarray(start));
      }
      if (text.length >= PIECE_BYTES) {
        yield text.bytes;
        text.clear();
      }
    }
    text.ascii('\n]}\n');
    yield text.bytes;
  }

  /** Spells store `index` into `text`, yielding true whenever `text` has a piece's worth. */
  *#storeText(text: ByteText, index: number, store: StoreHead): Generator<boolean> {
    const { images: count, ...head } = store;
    text.text(`${JSON.stringify(head).slice(0, -1)},"images":[`);
    const first = this.#first[index] as number;
    for (let i = 0; i < count; i++) {
      if (i > 0) text.ascii(',');
      this.#images.spell(text, first + i);
      if (text.length >= PIECE_BYTES) yield true;
    }
    text.ascii(']}');
  }
}
