/**
 * JSON text written straight into one reused buffer, for the two texts a
 * running job writes per image (its journal line and its snapshot entry):
 * numbers as digits, short ASCII as is, no string per image to build, join
 * and convert to UTF-8 afterwards. On a 100k-image job that halves what
 * keeping the results file costs the main thread.
 */
import type { DoneField, DoneValues } from './done-fields.js';

/** How a text spells a done image's values: each field after its fixed ASCII lead. */
export type FieldSpelling = readonly (readonly [lead: Buffer, field: DoneField])[];

/** A spelling from `fields`, each led by `leadOf(field)`. */
export function fieldSpelling(
  fields: readonly DoneField[],
  leadOf: (field: DoneField) => string,
): FieldSpelling {
  return fields.map((field) => [Buffer.from(leadOf(field)), field] as const);
}

/** Field `field` of image `image`, wherever it is kept (an object, JobState's columns). */
export type ValueOf = (field: DoneField, image: number) => DoneValues[keyof DoneValues];

// eslint-disable-next-line no-control-regex -- what JSON escapes, and what is not ASCII
const NOT_PLAIN_ASCII = /[\u0000-\u001f"\\\u007f-\uffff]/;

export class ByteText {
  #bytes: Buffer;
  #length = 0;

  constructor(capacity = 64 * 1024) {
    this.#bytes = Buffer.allocUnsafe(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** What was written so far; valid until the next write or `clear`. */
  get bytes(): Buffer {
    return this.#bytes.subarray(0, this.#length);
  }

  /** A copy of what was written, which later writes do not change. */
  copy(): Buffer {
    return Buffer.from(this.bytes);
  }

  clear(): void {
    this.#length = 0;
  }

  /** Makes room for `bytes` more. */
  reserve(bytes: number): void {
    if (this.#length + bytes <= this.#bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#bytes.length * 2, this.#length + bytes));
    this.#bytes.copy(grown, 0, 0, this.#length);
    this.#bytes = grown;
  }

  /** Any text, as UTF-8. */
  text(text: string): void {
    this.reserve(Buffer.byteLength(text));
    this.#length += this.#bytes.write(text, this.#length);
  }

  /** Text known to be ASCII (plain types): one byte a character. */
  ascii(text: string): void {
    this.reserve(text.length);
    const bytes = this.#bytes;
    let at = this.#length;
    // A loop beats a native call for the few bytes this mostly gets.
    for (let k = 0; k < text.length; k++) bytes[at++] = text.charCodeAt(k);
    this.#length = at;
  }

  /** `text` as a JSON string, as JSON.stringify spells it. */
  jsonString(text: string): void {
    // Anything to escape or beyond ASCII: JSON.stringify knows best.
    if (NOT_PLAIN_ASCII.test(text)) {
      this.text(JSON.stringify(text));
      return;
    }
    this.reserve(text.length + 2);
    const bytes = this.#bytes;
    bytes[this.#length] = 0x22;
    // Native, and one byte a character: faster than a loop past a few bytes.
    const written = bytes.write(text, this.#length + 1, 'latin1');
    bytes[this.#length + 1 + written] = 0x22;
    this.#length += written + 2;
  }

  /** `bytes[start, end)` as they are. */
  raw(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.reserve(end - start);
    if (end - start > 64) {
      // A store's kept text: a native copy.
      this.#bytes.set(bytes.subarray(start, end), this.#length);
      this.#length += end - start;
      return;
    }
    const target = this.#bytes;
    let at = this.#length;
    // The few bytes of a lead: a loop beats a native copy.
    for (let k = start; k < end; k++) target[at++] = bytes[k] as number;
    this.#length = at;
  }

  /** The values `valueOf` gives as `spelling` spells them (a plain done image: see `isPlainDone`). */
  fields(spelling: FieldSpelling, valueOf: ValueOf, image: number): void {
    for (const [lead, field] of spelling) {
      this.raw(lead);
      const value = valueOf(field, image);
      if (typeof value === 'string') this.jsonString(value);
      else this.count(value);
    }
  }

  /** The decimal digits of a count (see `isCount`). */
  count(value: number): void {
    this.reserve(16);
    const bytes = this.#bytes;
    let end = this.#length;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) end++;
    this.#length = end + 1;
    let rest = value;
    do {
      bytes[end--] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    } while (rest > 0);
  }
}
