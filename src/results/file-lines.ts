/**
 * A file read line by line from an open handle, a chunk at a time: a
 * results file of ten million images (~1.8 GB) is more than one string can
 * hold (V8's limit is 512 MB), and is never needed whole.
 */
import type { FileHandle } from 'node:fs/promises';

/** Bytes read at a time: big enough that a read costs little per line. */
const CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;

/** Each line of the file (without its `\n`), as bytes; the last one even without a final `\n`. */
export async function* fileLines(file: FileHandle): AsyncGenerator<Buffer> {
  let position = 0;
  let partial: Buffer[] = [];
  for (;;) {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    const { bytesRead } = await file.read(chunk, 0, CHUNK_BYTES, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE, 0); end !== -1 && end < bytesRead;) {
      const piece = chunk.subarray(start, end);
      yield partial.length === 0 ? piece : Buffer.concat([...partial, piece]);
      partial = [];
      start = end + 1;
      end = chunk.indexOf(NEWLINE, start);
    }
    if (start < bytesRead) partial.push(chunk.subarray(start, bytesRead));
  }
  if (partial.length > 0) yield Buffer.concat(partial);
}

/** How often `needle` occurs in `line` (the images of a store line: each starts `{"url":`). */
export function occurrences(line: Buffer, needle: Buffer): number {
  let count = 0;
  for (let at = line.indexOf(needle); at !== -1; at = line.indexOf(needle, at + needle.length))
    count++;
  return count;
}
