/**
 * Strict UTF-8 decoding for input files. Node's default decoding turns a
 * broken byte into U+FFFD without a word, so a manifest saved in Latin-1 (or
 * cut mid-character) would become store ids and URLs nobody wrote.
 */

import { ImgjobError } from '../utils/errors.js';

const strict = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');

/** The text, or the byte offset of the first byte that is not valid UTF-8. */
export function decodeUtf8(
  bytes: Uint8Array,
): { readonly text: string } | { readonly invalidAt: number } {
  try {
    return { text: strict.decode(bytes) };
  } catch {
    return { invalidAt: firstInvalidByte(bytes) };
  }
}

/**
 * Where the first invalid sequence starts: the first U+FFFD of a lenient
 * decoding that the bytes do not spell out themselves (EF BF BD). Everything
 * before it decoded cleanly, so its UTF-8 length is its length in bytes.
 */
function firstInvalidByte(bytes: Uint8Array): number {
  const text = lenient.decode(bytes);
  const bomBytes = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let offset = bomBytes;
  let from = 0;
  for (let at = text.indexOf('\uFFFD'); at !== -1; at = text.indexOf('\uFFFD', at + 1)) {
    offset += Buffer.byteLength(text.slice(from, at));
    from = at + 1;
    if (bytes[offset] !== 0xef || bytes[offset + 1] !== 0xbf || bytes[offset + 2] !== 0xbd) {
      return offset;
    }
    offset += 3;
  }
  // Not reached for bytes the strict decoder refused; a safe answer all the same.
  return bytes.length;
}

/** The problem line of bytes that are not UTF-8, naming the first bad byte. */
export function notUtf8(bytes: Uint8Array, invalidAt: number, offset = invalidAt): string {
  const byte = bytes[invalidAt]?.toString(16).padStart(2, '0') ?? '';
  const what = byte === '' ? 'a character cut short at the end' : `byte 0x${byte}`;
  return `not valid UTF-8: ${what} at byte offset ${offset}`;
}

/**
 * Strict UTF-8 of a stream, chunk by chunk (a character may straddle
 * several). On a bad byte it throws a `NotUtf8Error` with the line
 * `decodeUtf8` gives for the whole stream: the failing chunk is decoded
 * again with the 4 bytes before it, which hold the start of any character
 * still open, from a character boundary.
 */
export class Utf8Stream {
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  /** The last bytes decoded (at most 4), and how many came before them. */
  #history: Uint8Array = new Uint8Array(0);
  #before = 0;

  /** @throws {NotUtf8Error} */
  decode(chunk: Uint8Array): string {
    let text: string;
    try {
      text = this.#decoder.decode(chunk, { stream: true });
    } catch {
      throw this.#invalid(chunk);
    }
    const total = this.#before + this.#history.length + chunk.length;
    this.#history =
      chunk.length >= 4 ? chunk.subarray(-4) : Buffer.concat([this.#history, chunk]).subarray(-4);
    this.#before = total - this.#history.length;
    return text;
  }

  /** @throws {NotUtf8Error} when the stream ends inside a character. */
  end(): string {
    try {
      return this.#decoder.decode();
    } catch {
      throw this.#invalid(new Uint8Array(0));
    }
  }

  #invalid(chunk: Uint8Array): NotUtf8Error {
    const window = Buffer.concat([this.#history, chunk]);
    let start = 0;
    // Continuation bytes (10xxxxxx) end a character begun before the window.
    while (start < 3 && start < window.length && ((window[start] as number) & 0xc0) === 0x80) {
      start++;
    }
    const found = decodeUtf8(window.subarray(start));
    const at = start + ('invalidAt' in found ? found.invalidAt : window.length - start);
    return new NotUtf8Error(notUtf8(window, at, this.#before + at));
  }
}

/** Bytes that are not UTF-8; the message names the line and column of the first. */
export class NotUtf8Error extends ImgjobError {
  constructor(message: string) {
    super('E_MANIFEST', message);
  }
}
