/**
 * The text of a results document, as buffers, re-serializing only what
 * changed. A snapshot of a 100k-image job is ~15 MB of JSON; writing one a
 * second from scratch would cost a third of the run. Each store's text is
 * cached and rebuilt only after the store changed, so a snapshot costs the
 * stores in flight (and the small header), whatever the size of the job.
 */
import type { JournalEntry } from './job-state.js';
import type { ImageResult, ResultsDocument, StoreResult } from '../types.js';

/** Jobs up to this many images are written indented, for people to read. */
const INDENTED_MAX_IMAGES = 5000;

type StoreCache = {
  /** The store's whole text (separator before it), as buffers; undefined once it changed. */
  text: Buffer[] | undefined;
  /**
   * The images' text as last built in one go (the job's first snapshot, for
   * most stores), with where each image starts (its comma included). Images
   * from `validFrom` on have not changed since: a store in flight reuses
   * that tail as it is, a slice of the same memory.
   */
  base: { readonly bytes: Buffer; readonly starts: Uint32Array } | undefined;
  validFrom: number;
  /**
   * The text of images `[0, doneUpTo)`, one buffer per snapshot that found
   * new ones. A store records its images in order, so each snapshot adds the
   * images recorded since the last and serializes nothing twice; a change
   * below `doneUpTo` (none in a normal run) starts the list again.
   */
  done: Buffer[];
  doneUpTo: number;
};

const ENDED: ReadonlySet<string> = new Set(['completed', 'failed', 'skipped']);
const IMAGES_END = Buffer.from(']}');
const IMAGE_START = Buffer.from(',{"url":');

export class SnapshotText {
  readonly #stores: StoreCache[] = [];

  /** A change to the document: the text it touches is stale. */
  changed(entry: JournalEntry): void {
    const cache = this.#stores[entry.s];
    if (cache === undefined) return;
    cache.text = undefined;
    if (entry.t !== 'image') return;
    cache.validFrom = Math.max(cache.validFrom, entry.i + 1);
    if (entry.i < cache.doneUpTo) {
      cache.done = [];
      cache.doneUpTo = 0;
    }
  }

  /**
   * The document's text as buffers, which stay valid (and unchanged) after
   * the document moves on: a snapshot may be written in the background.
   */
  chunks(document: ResultsDocument): Buffer[] {
    if (document.counts.images <= INDENTED_MAX_IMAGES) {
      return [Buffer.from(`${JSON.stringify(document, null, 2)}\n`)];
    }
    const { stores, ...header } = document;
    const chunks: Buffer[] = [Buffer.from(`${JSON.stringify(header).slice(0, -1)},"stores":[\n`)];
    stores.forEach((store, index) => {
      const cache = (this.#stores[index] ??= {
        text: undefined,
        base: undefined,
        validFrom: 0,
        done: [],
        doneUpTo: 0,
      });
      let text = cache.text;
      if (text === undefined) {
        const built = storeChunks(store, index, cache);
        text = built.parts;
        if (built.lasting) cache.text = text;
      }
      for (const chunk of text) chunks.push(chunk);
    });
    chunks.push(Buffer.from('\n]}\n'));
    return chunks;
  }
}

/**
 * A store's text as buffers: `lasting` when they stay its text until the
 * store changes; else (a store in flight) they are for this snapshot only,
 * cheap to put together again from the pieces kept in `cache`.
 */
function storeChunks(
  store: StoreResult,
  index: number,
  cache: StoreCache,
): { parts: Buffer[]; lasting: boolean } {
  const head = Buffer.from(`${index === 0 ? '' : ',\n'}${storeHead(store)}`);
  const { images } = store;
  if (cache.base === undefined) {
    // All of it in one go; kept whole until the store changes.
    const { bytes, starts } = imagesText(images);
    cache.base = { bytes, starts };
    cache.validFrom = 0;
    cache.done = [];
    cache.doneUpTo = 0;
    return { parts: [head, bytes, IMAGES_END], lasting: true };
  }
  if (cache.doneUpTo < cache.validFrom) {
    let text = '';
    for (let i = cache.doneUpTo; i < cache.validFrom; i++) {
      text += `${i === 0 ? '' : ','}${imageText(images[i] as ImageResult)}`;
    }
    cache.done.push(Buffer.from(text));
    cache.doneUpTo = cache.validFrom;
  }
  const tail =
    cache.validFrom < images.length
      ? [cache.base.bytes.subarray(cache.base.starts[cache.validFrom])]
      : [];
  const parts = [head, ...cache.done, ...tail, IMAGES_END];
  // A store that has ended does not change again: these pieces are its text
  // for good (the base it no longer needs goes, but for the slice kept).
  if (ENDED.has(store.status)) {
    cache.base = undefined;
    cache.done = [];
    cache.doneUpTo = 0;
    return { parts, lasting: true };
  }
  return { parts, lasting: false };
}

/**
 * The images of a store as JSON (no brackets) and where each starts: one
 * native JSON.stringify, the starts found by their `,{"url":` (which no
 * string value can hold: its quotes would be escaped). Image texts built
 * one by one are the fallback, should an image not begin with its URL.
 */
function imagesText(images: readonly ImageResult[]): { bytes: Buffer; starts: Uint32Array } {
  const bytes = Buffer.from(JSON.stringify(images).slice(1, -1));
  const starts = new Uint32Array(images.length + 1);
  let found = 1;
  for (let at = bytes.indexOf(IMAGE_START); at !== -1; at = bytes.indexOf(IMAGE_START, at + 1)) {
    if (found < images.length) starts[found] = at;
    found++;
  }
  if (found === images.length) {
    starts[images.length] = bytes.length;
    return { bytes, starts };
  }
  const texts = images.map((image, i) => `${i === 0 ? '' : ','}${imageText(image)}`);
  texts.forEach((text, i) => {
    starts[i + 1] = (starts[i] ?? 0) + Buffer.byteLength(text);
  });
  return { bytes: Buffer.from(texts.join('')), starts };
}

/** `{"store_id":…,"status":…,"images":[`: the store without its images. */
function storeHead(store: StoreResult): string {
  const { images: _images, ...rest } = store;
  return `${JSON.stringify(rest).slice(0, -1)},"images":[`;
}

/**
 * An image as JSON. A pending or done image — nearly every image of a big
 * job — comes from a template, as in the journal: faster than
 * JSON.stringify, and the same text (test/results.test.ts checks it).
 */
export function imageText(image: ImageResult): string {
  if (image.status === 'pending') return `{"url":${JSON.stringify(image.url)},"status":"pending"}`;
  if (image.status !== 'done') return JSON.stringify(image);
  const { url, width, height, perimeter, type, bytes, attempts, gpu_ms, download_ms } = image;
  return `{"url":${JSON.stringify(url)},"status":"done","width":${width},"height":${height},"perimeter":${perimeter},"type":${JSON.stringify(type)},"bytes":${bytes},"attempts":${attempts},"gpu_ms":${gpu_ms},"download_ms":${download_ms}}`;
}

/** The byte size of a snapshot. */
export function sizeOf(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}
