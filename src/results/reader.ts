/** Reading a results file: snapshot, journals, checks. */
import { closeSync, openSync, readSync } from 'node:fs';
import { hostname } from 'node:os';

import { ResultsStream } from './results-stream.js';
import type { ResultsDocument } from '../types.js';
import { isProcessAlive } from '../utils/process-alive.js';

/**
 * Reads a results file and replays its journal, if a run left one: store by
 * store (results-stream.ts), so a file bigger than one string can hold
 * (~3M images) loads too.
 */
export async function loadResults(path: string): Promise<ResultsDocument> {
  const stream = await ResultsStream.open(path);
  try {
    return await stream.document();
  } finally {
    await stream.close();
  }
}

/** What `readResultsHeader` reads first, and the most it reads, looking for the header's end. */
const HEADER_READ_FIRST = 64 << 10;
const HEADER_READ_MAX = 4 << 20;

/**
 * The fields of a results file before its stores (job, status, writer,
 * counts), or undefined when the file holds none. Only the head of the file
 * is read: `--force` over a 100k-image file must not parse 15 MB (and grow
 * the heap by as much) just to see whether a run still writes it. The
 * header comes first because both ways of writing a snapshot put `stores`
 * last; outside a string, `"stores": [` can only be that key (`counts.stores`
 * is a number).
 */
export function readResultsHeader(path: string): Partial<ResultsDocument> | undefined {
  let head: string | undefined;
  try {
    const fd = openSync(path, 'r');
    try {
      // Mostly the first 64 KiB hold it; a long error list takes more reads.
      for (let size = HEADER_READ_FIRST; head === undefined && size <= HEADER_READ_MAX; size *= 4) {
        const buffer = Buffer.allocUnsafe(size);
        const read = readSync(fd, buffer, 0, size, 0);
        const text = buffer.toString('utf8', 0, read);
        const end = text.search(/"stores":\s*\[/);
        if (end !== -1) head = text.slice(0, end);
        else if (read < size) break;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  if (head === undefined) return undefined;
  try {
    const header = JSON.parse(`${head.replace(/,\s*$/, '')}}`) as unknown;
    return typeof header === 'object' && header !== null ? header : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the run that wrote this document still runs (same host, live pid). */
export function isWriterAlive(document: Pick<ResultsDocument, 'writer'>): boolean {
  const { writer } = document;
  return writer !== undefined && writer.host === hostname() && isProcessAlive(writer.pid);
}
