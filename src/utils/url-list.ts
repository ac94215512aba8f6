/**
 * Strings added one at a time and read back by position, kept as a few
 * long strings and where each one ends: a million URLs cost their
 * characters and 4 bytes each, where a million strings cost ~60 bytes each
 * and are a million objects for every full GC to mark.
 */

/** Strings per joined chunk: a position's chunk is a shift away. */
const CHUNK_SHIFT = 10;
const PER_CHUNK = 1 << CHUNK_SHIFT;
/** Past this many characters a chunk stays a list of strings: a joined string has a length limit. */
const MAX_JOINED = 1 << 24;

export class UrlList implements Iterable<string> {
  /** Full chunks: their strings joined, or (huge ones) as they are. */
  readonly #chunks: (string | readonly string[])[] = [];
  /** Where each string ends within its chunk. */
  #ends: Uint32Array;
  /** The strings of the chunk being filled. */
  #open: string[] = [];
  #openChars = 0;
  #length = 0;
  #sealed = false;

  constructor(expected = 4) {
    this.#ends = new Uint32Array(Math.max(1, expected));
  }

  static of(values: Iterable<string>): UrlList {
    const list = new UrlList();
    for (const value of values) list.push(value);
    return list;
  }

  get length(): number {
    return this.#length;
  }

  push(value: string): void {
    if (this.#sealed) throw new Error('a sealed UrlList takes no more strings');
    const index = this.#length;
    if (index === this.#ends.length) {
      const ends = new Uint32Array(index * 2);
      ends.set(this.#ends);
      this.#ends = ends;
    }
    this.#ends[index] = this.#openChars + value.length;
    this.#openChars += value.length;
    this.#length = index + 1;
    this.#open.push(value);
    if (this.#open.length === PER_CHUNK) this.#close();
  }

  /** The string at `index`; undefined past the end (as an array's `at`, but no negative positions). */
  at(index: number): string | undefined {
    if (index >>> 0 !== index || index >= this.#length) return undefined;
    const chunk = this.#chunks[index >>> CHUNK_SHIFT] ?? this.#open;
    const inChunk = index & (PER_CHUNK - 1);
    if (typeof chunk !== 'string') return chunk[inChunk];
    const start = inChunk === 0 ? 0 : (this.#ends[index - 1] as number);
    return chunk.slice(start, this.#ends[index]);
  }

  /** Whether the string at `index` is `value`, without making the string. */
  holds(index: number, value: string): boolean {
    if (index >>> 0 !== index || index >= this.#length) return false;
    const chunk = this.#chunks[index >>> CHUNK_SHIFT] ?? this.#open;
    const inChunk = index & (PER_CHUNK - 1);
    if (typeof chunk !== 'string') return chunk[inChunk] === value;
    const start = inChunk === 0 ? 0 : (this.#ends[index - 1] as number);
    return (this.#ends[index] as number) - start === value.length && chunk.startsWith(value, start);
  }

  /** Done adding: the last chunk is joined and spare room given back. */
  seal(): this {
    if (this.#sealed) return this;
    this.#sealed = true;
    if (this.#open.length > 0) this.#close();
    if (this.#ends.length > this.#length) this.#ends = this.#ends.slice(0, this.#length);
    return this;
  }

  *[Symbol.iterator](): Iterator<string> {
    for (let index = 0; index < this.#length; index++) yield this.at(index) as string;
  }

  /** As an array: a task sent to a queue worker is JSON. */
  toJSON(): string[] {
    return [...this];
  }

  #close(): void {
    const open = this.#open;
    this.#chunks.push(this.#openChars > MAX_JOINED ? open : open.join(''));
    this.#open = [];
    this.#openChars = 0;
  }
}
