/**
 * The sizes of the four formats that make up nearly every download (JPEG,
 * PNG, WebP, GIF) read straight from the head, the way image-size reads them
 * but without its per-call allocations (a DataView per field, hex strings to
 * compare markers, a copy per JPEG segment). Every read is checked against
 * the bytes held: a head cut short is never read past its end.
 *
 * It answers only when sure: `undefined` for anything else (another format,
 * a variant, a header cut short or broken), and image-size decides then, so
 * a size found here is the size image-size finds in the same bytes.
 */
import type { Dimensions } from './measure.js';

export function quickSize(head: Uint8Array): Dimensions | undefined {
  switch (head[0]) {
    case 0xff:
      return head[1] === 0xd8 ? jpeg(head) : undefined;
    case 0x89:
      return png(head);
    case 0x52:
      return webp(head);
    case 0x47:
      return gif(head);
    default:
      return undefined;
  }
}

/**
 * image-size's walk: from byte 4, a segment length, then the marker it leads
 * to (stepping one byte on when none is there) until a SOF0–2 segment.
 */
function jpeg(b: Uint8Array): Dimensions | undefined {
  const end = b.length;
  for (let p = 4; p < end;) {
    if (end - p < 2) return undefined;
    const length = u16be(b, p);
    if (length > end - p) return undefined;
    const at = p + length;
    if (b[at] !== 0xff) {
      p += 1;
      continue;
    }
    const marker = b[at + 1];
    if (marker === 0xc0 || marker === 0xc1 || marker === 0xc2) {
      if (at + 9 > end) return undefined;
      return sized(u16be(b, at + 7), u16be(b, at + 5), 'jpg');
    }
    p = at + 2;
  }
  return undefined;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const IHDR = [0x49, 0x48, 0x44, 0x52];

function png(b: Uint8Array): Dimensions | undefined {
  // The "fried" (CgBI) variant and anything unusual is left to image-size.
  if (b.length < 24 || !bytesAt(b, 0, PNG_SIGNATURE) || !bytesAt(b, 12, IHDR)) return undefined;
  return sized(u32be(b, 16), u32be(b, 20), 'png');
}

const RIFF = [0x52, 0x49, 0x46, 0x46];
const WEBP_VP8 = [0x57, 0x45, 0x42, 0x50, 0x56, 0x50, 0x38]; // "WEBPVP8" at 8

function webp(b: Uint8Array): Dimensions | undefined {
  if (b.length < 30 || !bytesAt(b, 0, RIFF) || !bytesAt(b, 8, WEBP_VP8)) return undefined;
  const kind = b[15];
  const first = b[20] ?? 0;
  if (kind === 0x58) {
    // VP8X: extended
    if ((first & 0xc1) !== 0) return undefined;
    return sized(1 + u24le(b, 24), 1 + u24le(b, 27), 'webp');
  }
  if (kind === 0x20 && first !== 0x2f) {
    // "VP8 ": lossy
    return sized(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff, 'webp');
  }
  if (kind === 0x4c && !(b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a)) {
    // VP8L: lossless
    const b21 = b[21] ?? 0;
    const b22 = b[22] ?? 0;
    const b23 = b[23] ?? 0;
    const b24 = b[24] ?? 0;
    const width = 1 + (((b22 & 0x3f) << 8) | b21);
    const height = 1 + (((b24 & 0xf) << 10) | (b23 << 2) | ((b22 & 0xc0) >> 6));
    return sized(width, height, 'webp');
  }
  return undefined;
}

const GIF8 = [0x47, 0x49, 0x46, 0x38];

function gif(b: Uint8Array): Dimensions | undefined {
  if (b.length < 10 || !bytesAt(b, 0, GIF8) || b[5] !== 0x61) return undefined;
  if (b[4] !== 0x37 && b[4] !== 0x39) return undefined; // GIF87a, GIF89a
  return sized(u16le(b, 6), u16le(b, 8), 'gif');
}

/** A size of zero is no size: image-size says why. */
function sized(width: number, height: number, type: string): Dimensions | undefined {
  return width > 0 && height > 0 ? { width, height, type } : undefined;
}

function bytesAt(b: Uint8Array, at: number, expected: readonly number[]): boolean {
  for (let i = 0; i < expected.length; i++) if (b[at + i] !== expected[i]) return false;
  return true;
}

// Callers check the length first; `?? 0` only satisfies the type checker.
function u16be(b: Uint8Array, at: number): number {
  return ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
}

function u16le(b: Uint8Array, at: number): number {
  return (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
}

function u24le(b: Uint8Array, at: number): number {
  return u16le(b, at) + ((b[at + 2] ?? 0) << 16);
}

function u32be(b: Uint8Array, at: number): number {
  return (((b[at] ?? 0) << 24) >>> 0) + ((b[at + 1] ?? 0) << 16) + u16be(b, at + 2);
}
