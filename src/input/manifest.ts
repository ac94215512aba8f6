/**
 * Reads a manifest — the Retail Pulse JSON, JSON Lines or CSV — as a stream,
 * checks it and groups its visits into store tasks. Every problem is
 * reported at once, one `place: what` line each, so a user fixes a broken
 * file in one pass.
 */
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

import { parse as parseCsvStream } from 'csv-parse';
import { CsvError, parse as parseCsvText } from 'csv-parse/sync';

import { describeFileError, InputError, ManifestError } from '../utils/errors.js';
import { CSV_OPTIONS, CsvManifest } from './csv-manifest.js';
import { JsonLinesParser } from './json-lines.js';
import { inputFormatOf, type InputFormat, type ManifestParser } from './manifest-parser.js';
import { RetailPulseParser } from './retail-pulse.js';
import { decodeUtf8, NotUtf8Error, notUtf8, Utf8Stream } from './utf8.js';
import type { JobInput } from '../types.js';

export { buildManifestSchema } from './manifest-rules.js';
export { canonicalManifest } from './job-builder.js';
export { INPUT_FORMATS, inputFormatOf, type InputFormat } from './manifest-parser.js';

/**
 * Read size. 64 KiB chunks die young in V8's new space; 1 MiB chunks went to
 * the large-object space and, as garbage there, raised peak RSS by about the
 * manifest's size (BENCHMARKS.md).
 */
const CHUNK_BYTES = 1 << 16;

/**
 * Validates a manifest and groups it into stores.
 * @param content The manifest's bytes (which must be UTF-8), or its text.
 * @param source The file path, or `-` for stdin; names the manifest in messages.
 * @throws {ManifestError} listing every problem, one `place: what` line each.
 */
export function parseManifest(
  content: string | Uint8Array,
  source: string,
  format: InputFormat = 'rp',
): JobInput {
  const text = typeof content === 'string' ? content : decodeManifest(content, source);
  const body = text.replace(/^\uFEFF/, '');
  if (format === 'csv') {
    const csv = new CsvManifest(source);
    for (const record of csvRecords(body, source)) csv.add(record);
    return csv.end();
  }
  const parser = parserFor(format, source);
  parser.push(body);
  return parser.end();
}

/**
 * `parseManifest` of a Retail Pulse body for a server: its bytes go to the
 * parser a chunk at a time, and `turn` is awaited before each chunk (it
 * yields to the event loop when its slice of time is used up), so parsing a
 * 16 MB submit never holds other clients for the whole of it. With the
 * job comes its canonical manifest text (`canonicalManifest`), spelt in
 * slices too, and kept in pieces.
 * @throws {ManifestError} as `parseManifest` does.
 */
export async function parseManifestInSlices(
  bytes: Uint8Array,
  source: string,
  turn: () => Promise<void> | undefined,
): Promise<{ readonly input: JobInput; readonly canonical: readonly string[] }> {
  const parser = new RetailPulseParser(source);
  const decoder = new Utf8Stream();
  try {
    for (let at = 0; at < bytes.length; at += CHUNK_BYTES) {
      await turn();
      parser.push(decoder.decode(bytes.subarray(at, at + CHUNK_BYTES)));
    }
    parser.push(decoder.end());
  } catch (error) {
    if (error instanceof NotUtf8Error) throw new ManifestError(source, [error.message]);
    throw error;
  }
  await turn();
  return parser.endInSlices(turn);
}

/**
 * Reads a manifest file, or stdin when `path` is `-`, in chunks: the text
 * is never held whole.
 * @param format By default from the extension (stdin: the Retail Pulse JSON).
 * @throws {InputError} `E_MANIFEST` when it cannot be read, {ManifestError} when it is invalid.
 */
export async function readManifest(
  path: string,
  stdin: NodeJS.ReadableStream = process.stdin,
  format: InputFormat = inputFormatOf(path === '-' ? '' : path),
): Promise<JobInput> {
  const stream = path === '-' ? stdin : createReadStream(path, { highWaterMark: CHUNK_BYTES });
  if (format === 'csv') return readCsv(stream, path);
  const parser = parserFor(format, path);
  // Strips a BOM, as editors on Windows like to start a file with one.
  const decoder = new Utf8Stream();
  try {
    for await (const chunk of readable(stream, path)) {
      parser.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk));
    }
    parser.push(decoder.end());
  } catch (error) {
    if (error instanceof NotUtf8Error) throw new ManifestError(path, [error.message]);
    throw error;
  }
  return parser.end();
}

/** The text of UTF-8 bytes; a file in another encoding is refused, not read as garbage. */
function decodeManifest(bytes: Uint8Array, source: string): string {
  const decoded = decodeUtf8(bytes);
  if ('text' in decoded) return decoded.text;
  throw new ManifestError(source, [notUtf8(bytes, decoded.invalidAt)]);
}

function parserFor(format: 'rp' | 'jsonl', source: string): ManifestParser {
  return format === 'jsonl' ? new JsonLinesParser(source) : new RetailPulseParser(source);
}

async function readCsv(stream: NodeJS.ReadableStream, path: string): Promise<JobInput> {
  const csv = new CsvManifest(path);
  const parser = parseCsvStream(CSV_OPTIONS);
  // Records are taken as they come ('data'): an async iterator costs a promise each.
  parser.on('data', (record: string[]) => {
    csv.add(record);
  });
  try {
    await pipeline(checkedUtf8(readable(stream, path)), parser);
  } catch (error) {
    if (error instanceof CsvError) throw notValidCsv(error, path);
    if (error instanceof NotUtf8Error) throw new ManifestError(path, [error.message]);
    throw error;
  }
  return csv.end();
}

/** The chunks as they are, once checked to be UTF-8 (csv-parse decodes them itself, leniently). */
async function* checkedUtf8(
  chunks: AsyncIterable<Buffer | string>,
): AsyncGenerator<Buffer | string> {
  const decoder = new Utf8Stream();
  for await (const chunk of chunks) {
    if (typeof chunk !== 'string') decoder.decode(chunk);
    yield chunk;
  }
  decoder.end();
}

function csvRecords(text: string, source: string): string[][] {
  try {
    return parseCsvText(text, CSV_OPTIONS);
  } catch (error) {
    if (error instanceof CsvError) throw notValidCsv(error, source);
    throw error;
  }
}

function notValidCsv(error: CsvError, source: string): ManifestError {
  return new ManifestError(source, [`not valid CSV: ${error.message}`], { cause: error });
}

/** The stream's chunks; a read error becomes `E_MANIFEST`, naming the file. */
async function* readable(
  stream: NodeJS.ReadableStream,
  path: string,
): AsyncGenerator<Buffer | string> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (error) {
    const message = `cannot read manifest ${path === '-' ? 'from stdin' : path}: ${describeFileError(error)}`;
    throw new InputError('E_MANIFEST', message, { cause: error });
  }
}
