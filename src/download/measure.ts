/**
 * Image dimensions from the head of a byte stream, with image-size. No image
 * is ever decoded: only the header is read, and only the bytes up to it are
 * held in memory.
 */
import { imageSize } from 'image-size';

import type { DownloadError } from '../utils/errors.js';
import { notImage } from './errors.js';
import { quickSize } from './quick-size.js';

/** Width and height as stored in the file (no EXIF rotation applied). */
export type Dimensions = { readonly width: number; readonly height: number; readonly type: string };

/** Dimensions and the body bytes read to find them. */
export type Measured = Dimensions & { readonly bytes: number };

export type HeaderProbeOptions = {
  /** The URL the bytes came from, for errors. @default '' */
  readonly url?: string;
  /**
   * Most head bytes held while looking for the dimensions; a file whose
   * dimensions are not within them is not taken for an image.
   * @default 8 MiB
   */
  readonly maxHeaderBytes?: number;
};

export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024 * 1024;

/**
 * The first try waits for this many bytes (or the end of the body): a few
 * image-size readers index bytes without bounds checks (WebP lossless, PNM),
 * so a head cut shorter than their header could yield a made-up size. Every
 * such header fits well within it.
 */
const FIRST_TRY_BYTES = 4096;

/**
 * Collects the head of an image until its dimensions are known, then holds
 * nothing more. image-size runs again only once the held bytes have doubled
 * since the last try, so many tiny chunks cost a few parses, not one each.
 */
export class HeaderProbe {
  readonly #url: string;
  readonly #maxHeaderBytes: number;
  #chunks: Uint8Array[] = [];
  #held = 0;
  #triedAt = 0;
  #nextTry = FIRST_TRY_BYTES;
  #lastError = '';
  #found: Dimensions | undefined;
  /** The response's Content-Type, named in a "not an image" error. */
  contentType: string | undefined;

  constructor(options: HeaderProbeOptions = {}) {
    this.#url = options.url ?? '';
    this.#maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  }

  /** Bytes held now: 0 once the dimensions are known. */
  get bytesHeld(): number {
    return this.#held;
  }

  /** The dimensions, once known. */
  get dimensions(): Dimensions | undefined {
    return this.#found;
  }

  /**
   * Takes the next chunk; returns the dimensions once known. Throws an
   * `E_NOT_IMAGE` DownloadError when the header window is full without them.
   */
  push(chunk: Uint8Array): Dimensions | undefined {
    if (this.#found) return this.#found;
    const full = this.#keep(chunk);
    const found = this.#held >= this.#nextTry || full ? this.#try() : undefined;
    if (!found && full) throw this.#windowFull();
    return found;
  }

  /**
   * Takes the next chunk without trying it: for a head that arrives whole
   * anyway (a range), `settle()` at its end tries once. Throws like `push()`
   * when the header window is full without the dimensions. Returns true: more
   * bytes are welcome.
   */
  hold(chunk: Uint8Array): true {
    if (this.#found) return true;
    if (this.#keep(chunk) && !this.#try()) throw this.#windowFull();
    return true;
  }

  /**
   * Tries now if bytes came since the last try (at the end of a range, say),
   * once at least the first-try window is held.
   */
  settle(): Dimensions | undefined {
    const worthIt = this.#held > this.#triedAt && this.#held >= FIRST_TRY_BYTES;
    return this.#found ?? (worthIt ? this.#try() : undefined);
  }

  /** After the last chunk: the dimensions, or an `E_NOT_IMAGE` DownloadError. */
  finish(): Dimensions {
    // The body is complete now, so a short head is the whole file: try it.
    const found = this.#found ?? (this.#held > this.#triedAt ? this.#try() : undefined);
    if (found) return found;
    if (this.#held === 0) throw this.#notImage('not an image: the body was empty');
    throw this.#notImage();
  }

  /** Holds what fits of `chunk` in the window; returns whether the window is full. */
  #keep(chunk: Uint8Array): boolean {
    const room = this.#maxHeaderBytes - this.#held;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (kept.length > 0) {
      this.#chunks.push(kept);
      this.#held += kept.length;
    }
    return this.#held >= this.#maxHeaderBytes;
  }

  #windowFull(): DownloadError {
    return this.#notImage(`not an image: no dimensions in the first ${this.#maxHeaderBytes} bytes`);
  }

  #try(): Dimensions | undefined {
    const first = this.#chunks[0];
    if (!first) return undefined;
    // The first chunk alone mostly holds the header (a socket read is up to
    // 64 KiB): measured as it is, it saves copying the head into one buffer.
    if (
      this.#chunks.length > 1 &&
      first.length >= FIRST_TRY_BYTES &&
      first.length > this.#triedAt
    ) {
      const result = measure(first);
      if (typeof result !== 'string') return this.#foundIt(result);
    }
    const head = this.#chunks.length === 1 ? first : Buffer.concat(this.#chunks, this.#held);
    this.#chunks = [head];
    this.#triedAt = this.#held;
    this.#nextTry = this.#held * 2;
    const result = measure(head);
    if (typeof result !== 'string') return this.#foundIt(result);
    this.#lastError = result;
    return undefined;
  }

  #foundIt(dimensions: Dimensions): Dimensions {
    this.#found = dimensions;
    this.#chunks = [];
    this.#held = 0;
    return dimensions;
  }

  #notImage(message?: string): DownloadError {
    const head = this.#chunks[0] ?? new Uint8Array();
    const broken = this.#lastError !== '' && !this.#lastError.startsWith('unsupported file type');
    const known = broken ? ` (${this.#lastError})` : '';
    const text =
      message ??
      `not ${known ? 'a readable' : 'an'} image${known}: ${this.#held} bytes starting ${preview(head)}`;
    // What the server said it sent (an empty body needs no more words).
    const served = this.contentType && this.#held > 0 ? ` (Content-Type: ${this.contentType})` : '';
    return notImage(this.#url, `${text}${served}`);
  }
}

/**
 * Reads the dimensions of a whole head; returns why not as a string. A size
 * that is zero or not finite is no size.
 */
export function measure(head: Uint8Array): Dimensions | string {
  const quick = quickSize(head);
  if (quick) return quick;
  let size: ReturnType<typeof imageSize>;
  try {
    // A copy of exactly the head: image-size reads some fields through a
    // DataView over the whole ArrayBuffer, which for a chunk of a socket read
    // reaches past the bytes received.
    size = imageSize(new Uint8Array(head));
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  const { width, height } = size;
  const type = size.type ?? 'unknown';
  if (!isSize(width) || !isSize(height)) return `${type} without a valid size`;
  if (type === 'svg' && isHtmlPage(head)) return 'unsupported file type: html';
  return { width, height, type };
}

function isSize(value: number | undefined): value is number {
  return value !== undefined && Number.isFinite(value) && value > 0;
}

/**
 * image-size takes any text with an `<svg …>` tag near its start for an SVG;
 * an HTML page with an inline icon (a login or error page served with 200)
 * would get the icon's size. An SVG document has no `<html` or `<body` tag.
 */
function isHtmlPage(head: Uint8Array): boolean {
  const text = new TextDecoder().decode(head.subarray(0, 2048)).toLowerCase();
  const svgAt = text.indexOf('<svg');
  const before = svgAt < 0 ? text : text.slice(0, svgAt);
  return before.includes('<html') || before.includes('<body');
}

/** The first bytes, printable and short: `"<!doctype html> <html…"`. */
function preview(head: Uint8Array): string {
  const shown = head.subarray(0, 24);
  let text = '';
  for (const byte of shown) {
    if (byte === 0x09 || byte === 0x0a || byte === 0x0d) text += ' ';
    else text += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.';
  }
  return JSON.stringify(text + (head.length > shown.length ? '…' : ''));
}
