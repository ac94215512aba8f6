/**
 * The journal's line format: one JSON value per line. A done image — nearly
 * every line of a big job — is a bare array `[store, image, ...values]` of
 * its `STORED_FIELDS` (`[0,3,640,480,"jpg",51234,1,120,35]`), without its
 * URL (the snapshot has it) or what is derived, and spelled straight into
 * bytes: ~35 bytes where the whole entry is ~200. Writing the journal costs about
 * its byte count, so this is most of what saving a 100k-image job costs.
 * Other changes are whole entries (`{"t":"image",…}`, `{"t":"store",…}`).
 */
import type { JournalEntry } from './job-state.js';
import { ByteText, fieldSpelling } from './byte-text.js';
import {
  doneFromStored,
  isCount,
  isPlainDone,
  STORED_FIELDS,
  type DoneImage,
} from './done-fields.js';

/** A done image as journaled: `[store, image, ...its STORED_FIELDS]`, e.g. `[0,3,640,480,"jpg",51234,1,120,35]`. */
type DoneTuple = readonly [s: number, i: number, ...values: unknown[]];

/**
 * A done image as earlier versions journaled it; still replayed (a resume
 * after an upgrade). Frozen: its keys stand for the fields of that time.
 */
type DoneLine = { readonly t: 'done' } & Readonly<Record<(typeof DONE_LINE_KEYS)[number], unknown>>;
const DONE_LINE_KEYS = ['s', 'i', 'w', 'h', 'ty', 'b', 'a', 'g', 'd'] as const;

export type JournalLine = JournalEntry | DoneLine | DoneTuple;

/** A done image the journal spells as a tuple: plain values, and its store and index counts. */
function isTupleEntry(
  entry: JournalEntry,
): entry is { t: 'image'; s: number; i: number; r: DoneImage } {
  return (
    entry.t === 'image' &&
    entry.r.status === 'done' &&
    isCount(entry.s) &&
    isCount(entry.i) &&
    isPlainDone(entry.r)
  );
}

export function encodeJournalEntry(entry: JournalEntry): string {
  if (!isTupleEntry(entry)) return `${JSON.stringify(entry)}\n`;
  const { s, i, r } = entry;
  const values = STORED_FIELDS.map((field) => JSON.stringify(r[field.key]));
  return `[${s},${i},${values.join(',')}]\n`;
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
  if (Array.isArray(line)) return doneEntry(line as DoneTuple, urlAt);
  const entry = line as JournalEntry | DoneLine;
  if (entry.t !== 'done') return entry;
  return doneEntry(DONE_LINE_KEYS.map((key) => entry[key]) as unknown as DoneTuple, urlAt);
}

function doneEntry(
  [s, i, ...values]: DoneTuple,
  urlAt: (store: number, image: number) => string | undefined,
): JournalEntry | undefined {
  const url = urlAt(s, i);
  if (url === undefined || values.length !== STORED_FIELDS.length) return undefined;
  const result = doneFromStored(url, values);
  return result && { t: 'image', s, i, r: result };
}

/** A done image's values in its journal line, after `[store,image`. */
const TUPLE_SPELLING = fieldSpelling(STORED_FIELDS, () => ',');

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
    if (!isTupleEntry(entry)) {
      text.text(encodeJournalEntry(entry));
      return;
    }
    const { s, i, r } = entry;
    text.ascii('[');
    text.count(s);
    text.ascii(',');
    text.count(i);
    text.fields(TUPLE_SPELLING, (field) => r[field.key], i);
    text.ascii(']\n');
  }
}
