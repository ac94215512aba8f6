/**
 * The journal's line format: one JSON value per line. A done image — nearly
 * every line of a big job — is a bare array `[store, image, width, height,
 * type, bytes, attempts, gpu_ms, download_ms]`, without its URL (the
 * snapshot has it) and written from a template rather than JSON.stringify:
 * ~35 bytes where the whole entry is ~200. Writing the journal costs about
 * its byte count, so this is most of what saving a 100k-image job costs.
 * Other changes are whole entries (`{"t":"image",…}`, `{"t":"store",…}`).
 */
import type { JournalEntry } from './job-state.js';
import { ByteText, doneLayout, isCount, isPlainDone } from './byte-text.js';
import type { ImageResult } from '../types.js';

/** A done image as journaled: `[0,3,640,480,"jpg",51234,1,120,35]`. */
type DoneTuple = readonly [
  s: number,
  i: number,
  w: number,
  h: number,
  ty: string,
  b: number,
  a: number,
  g: number,
  d: number,
];

/** A done image as earlier versions journaled it; still replayed (a resume after an upgrade). */
type DoneLine = {
  readonly t: 'done';
  readonly s: number;
  readonly i: number;
  readonly w: number;
  readonly h: number;
  readonly ty: string;
  readonly b: number;
  readonly a: number;
  readonly g: number;
  readonly d: number;
};

export type JournalLine = JournalEntry | DoneLine | DoneTuple;

export function encodeJournalEntry(entry: JournalEntry): string {
  if (entry.t !== 'image' || entry.r.status !== 'done') return `${JSON.stringify(entry)}\n`;
  const { s, i, r } = entry;
  return `[${s},${i},${r.width},${r.height},${JSON.stringify(r.type)},${r.bytes},${r.attempts},${r.gpu_ms},${r.download_ms}]\n`;
}

/**
 * The lines of a journal up to the first that does not parse: a crash can
 * leave the last one half-written, and what precedes it is what was recorded.
 */
export function parseJournal(text: string): JournalLine[] {
  const lines: JournalLine[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      lines.push(JSON.parse(line) as JournalLine);
    } catch {
      break;
    }
  }
  return lines;
}

/** The entry a line stands for; `urlAt` gives the URL a done line leaves out. */
export function entryOf(
  line: JournalLine,
  urlAt: (store: number, image: number) => string | undefined,
): JournalEntry | undefined {
  if (Array.isArray(line)) {
    const [s, i, w, h, ty, b, a, g, d] = line as DoneTuple;
    return doneEntry({ t: 'done', s, i, w, h, ty, b, a, g, d }, urlAt);
  }
  const entry = line as JournalEntry | DoneLine;
  return entry.t === 'done' ? doneEntry(entry, urlAt) : entry;
}

function doneEntry(
  line: DoneLine,
  urlAt: (store: number, image: number) => string | undefined,
): JournalEntry | undefined {
  const { s, i, w, h } = line;
  const url = urlAt(s, i);
  if (url === undefined || !Number.isInteger(w) || !Number.isInteger(h)) return undefined;
  const result: ImageResult = {
    url,
    status: 'done',
    width: w,
    height: h,
    perimeter: 2 * (w + h),
    type: line.ty,
    bytes: line.b,
    attempts: line.a,
    gpu_ms: line.g,
    download_ms: line.d,
  };
  return { t: 'image', s, i, r: result };
}

/** A done image's values in its journal line, after `[store,image`. */
const DONE_TUPLE = doneLayout([
  [',', 'width'],
  [',', 'height'],
  [',"', 'type'],
  ['",', 'bytes'],
  [',', 'attempts'],
  [',', 'gpu_ms'],
  [',', 'download_ms'],
]);

/**
 * Journal lines gathered as bytes until they are written (see ByteText): a
 * done line is spelled straight into one reused buffer, so there is nothing
 * to join or convert at write time. Other entries go through JSON.stringify.
 */
export class JournalBuffer {
  readonly #text = new ByteText();

  get length(): number {
    return this.#text.length;
  }

  /** The lines gathered so far; valid until the next `append` or `clear`. */
  get bytes(): Buffer {
    return this.#text.bytes;
  }

  clear(): void {
    this.#text.clear();
  }

  /** Adds the line of `entry`, exactly as `encodeJournalEntry` spells it. */
  append(entry: JournalEntry): void {
    const text = this.#text;
    if (entry.t !== 'image' || entry.r.status !== 'done') {
      text.text(encodeJournalEntry(entry));
      return;
    }
    const { s, i, r } = entry;
    if (!isCount(s) || !isCount(i) || !isPlainDone(r)) {
      text.text(encodeJournalEntry(entry));
      return;
    }
    text.ascii('[');
    text.count(s);
    text.ascii(',');
    text.count(i);
    text.done(r, DONE_TUPLE);
    text.ascii(']\n');
  }
}
