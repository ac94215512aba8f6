/**
 * The text of a results document, as buffers, re-serializing only what
 * changed. A snapshot of a 100k-image job is ~15 MB of JSON; writing one a
 * second from scratch would cost a third of the run. Each store's text is
 * cached and rebuilt only after the store changed, so a snapshot costs the
 * stores in flight (and the small header), whatever the size of the job.
 */
import type { ResultsDocument } from '../types.js';

/** Jobs up to this many images are written indented, for people to read. */
const INDENTED_MAX_IMAGES = 5000;

export class SnapshotText {
  /** Per store: its text (with the separator before it), or undefined once it changed. */
  #stores: (Buffer | undefined)[] = [];

  /** The store at `index` changed: its cached text is stale. */
  changed(index: number): void {
    this.#stores[index] = undefined;
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
    for (let index = 0; index < stores.length; index++) {
      let text = this.#stores[index];
      if (text === undefined) {
        text = Buffer.from(`${index === 0 ? '' : ',\n'}${JSON.stringify(stores[index])}`);
        this.#stores[index] = text;
      }
      chunks.push(text);
    }
    chunks.push(Buffer.from('\n]}\n'));
    return chunks;
  }
}

/** The byte size of a snapshot. */
export function sizeOf(chunks: readonly Uint8Array[]): number {
  return chunks.reduce((sum, chunk) => sum + chunk.length, 0);
}
