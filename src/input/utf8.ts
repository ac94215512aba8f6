/**
 * Strict UTF-8 decoding for input files. Node's default decoding turns a
 * broken byte into U+FFFD without a word, so a manifest saved in Latin-1 (or
 * cut mid-character) would become store ids and URLs nobody wrote.
 */

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
