/**
 * The text of a results document, as buffers, re-serializing only what
 * changed. A snapshot of a 100k-image job is ~15 MB of JSON; writing one a
 * second from scratch would cost a third of the run. Each store's text is
 * cached and rebuilt only after the store changed, so a snapshot costs the
 * stores in flight (and the small header), whatever the size of the job.
 */
import { ByteText, doneLayout, isPlainDone } from './byte-text.js';
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
const COMMA = Buffer.from(',');
const URL_KEY = Buffer.from('{"url":');
/** How a pending image's text ends, after its URL. */
const PENDING_END = Buffer.from(',"status":"pending"}');

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
    scratch.clear();
    for (let i = cache.doneUpTo; i < cache.validFrom; i++) {
      if (i > 0) scratch.raw(COMMA);
      writeImage(scratch, images[i] as ImageResult, cache.base, i);
    }
    cache.done.push(scratch.copy());
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
 * The images of a store as JSON (no brackets) and where each starts (its
 * comma included): for a new job, 100k pending images spelled straight
 * into bytes.
 */
function imagesText(images: readonly ImageResult[]): { bytes: Buffer; starts: Uint32Array } {
  const starts = new Uint32Array(images.length + 1);
  scratch.clear();
  images.forEach((image, i) => {
    starts[i] = scratch.length;
    if (i > 0) scratch.raw(COMMA);
    if (image.status === 'pending') {
      scratch.raw(URL_KEY);
      scratch.jsonString(image.url);
      scratch.raw(PENDING_END);
    } else {
      scratch.text(imageText(image));
    }
  });
  starts[images.length] = scratch.length;
  return { bytes: scratch.copy(), starts };
}

/** `{"store_id":…,"status":…,"images":[`: the store without its images. */
function storeHead(store: StoreResult): string {
  const { images: _images, ...rest } = store;
  return `${JSON.stringify(rest).slice(0, -1)},"images":[`;
}

/** Where images' text is put together before it is copied out. */
const scratch = new ByteText();

/**
 * Image `index` as `imageText` spells it, into `text`. A done image — nearly
 * every image a snapshot adds — is spelled byte by byte, its URL copied
 * from the store's first text, where it was pending: no string to build
 * and convert per image.
 */
function writeImage(
  text: ByteText,
  image: ImageResult,
  base: StoreCache['base'],
  index: number,
): void {
  if (image.status !== 'done' || !isPlainDone(image)) {
    text.text(imageText(image));
    return;
  }
  const url = base && pendingUrlOf(base, index);
  if (url) {
    text.raw(base.bytes, url.start - URL_KEY.length, url.end);
  } else {
    text.raw(URL_KEY);
    text.jsonString(image.url);
  }
  text.done(image, DONE_REST);
  text.raw(DONE_END);
}

/** Where image `index`'s URL (as JSON) is in `base`, if it was pending there. */
function pendingUrlOf(
  base: NonNullable<StoreCache['base']>,
  index: number,
): { start: number; end: number } | undefined {
  const from = (base.starts[index] ?? 0) + (index === 0 ? 0 : 1);
  const to = base.starts[index + 1] ?? 0;
  const start = from + URL_KEY.length;
  const end = to - PENDING_END.length;
  if (end <= start) return undefined;
  const { bytes } = base;
  for (let k = 0; k < PENDING_END.length; k++) {
    if (bytes[end + k] !== PENDING_END[k]) return undefined;
  }
  return { start, end };
}

/** A done image's text after its URL: `,"status":"done","width":…}`. */
const DONE_REST = doneLayout([
  [',"status":"done","width":', 'width'],
  [',"height":', 'height'],
  [',"perimeter":', 'perimeter'],
  [',"type":"', 'type'],
  ['","bytes":', 'bytes'],
  [',"attempts":', 'attempts'],
  [',"gpu_ms":', 'gpu_ms'],
  [',"download_ms":', 'download_ms'],
]);
const DONE_END = Buffer.from('}');

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
