/**
 * JSON text written straight into one reused buffer, for the two texts a
 * running job writes per image (its journal line and its snapshot entry):
 * numbers as digits, short ASCII as is, no string per image to build, join
 * and convert to UTF-8 afterwards. On a 100k-image job that halves what
 * keeping the results file costs the main thread.
 */
import type { ImageResult } from '../types.js';

export type DoneImage = Extract<ImageResult, { status: 'done' }>;

/** The values of a done image past its URL: counts, and its plain type. */
type DoneField =
  'width' | 'height' | 'perimeter' | 'type' | 'bytes' | 'attempts' | 'gpu_ms' | 'download_ms';

/** How a text spells a done image's values: each after its fixed ASCII lead. */
export type DoneLayout = readonly (readonly [lead: Buffer, field: DoneField])[];

/** A layout from `[lead, field]` pairs written as strings. */
export function doneLayout(pairs: readonly (readonly [string, DoneField])[]): DoneLayout {
  return pairs.map(([lead, field]) => [Buffer.from(lead), field] as const);
}

/** A type that needs no JSON escaping: what image-size reports (jpg, png, svg…). */
const PLAIN_TYPE = /^[a-z0-9]{1,32}$/;

/** Whether every number of a done image is a count (digits spell it) and its type is plain. */
export function isPlainDone(image: DoneImage): boolean {
  return (
    isCount(image.width) &&
    isCount(image.height) &&
    isCount(image.perimeter) &&
    isCount(image.bytes) &&
    isCount(image.attempts) &&
    isCount(image.gpu_ms) &&
    isCount(image.download_ms) &&
    PLAIN_TYPE.test(image.type)
  );
}

export function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

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
    this.reserve(text.length + 2);
    const bytes = this.#bytes;
    let at = this.#length;
    bytes[at++] = 0x22;
    for (let k = 0; k < text.length; k++) {
      const code = text.charCodeAt(k);
      // Anything to escape or beyond ASCII: JSON.stringify knows best.
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) {
        this.text(JSON.stringify(text));
        return;
      }
      bytes[at++] = code;
    }
    bytes[at++] = 0x22;
    this.#length = at;
  }

  /** `bytes[start, end)` as they are. */
  raw(bytes: Uint8Array, start = 0, end = bytes.length): void {
    this.reserve(end - start);
    const target = this.#bytes;
    let at = this.#length;
    // The few dozen bytes of a URL: a loop beats a native copy.
    for (let k = start; k < end; k++) target[at++] = bytes[k] as number;
    this.#length = at;
  }

  /** The values of `image` as `layout` spells them (see `isPlainDone`). */
  done(image: DoneImage, layout: DoneLayout): void {
    for (const [lead, field] of layout) {
      this.raw(lead);
      if (field === 'type') this.ascii(image.type);
      else this.count(image[field]);
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
