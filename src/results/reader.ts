/** Reading a results file: snapshot, journals, checks. */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';

import { describeFileError, InputError } from '../utils/errors.js';
import { JobState } from './job-state.js';
import { entryOf, parseJournal, type JournalLine } from './journal.js';
import type { ResultsDocument } from '../types.js';
import { journalPathOf, oldJournalPathOf } from './paths.js';
import { resultsProblem } from './results-check.js';

/** Reads a results file and replays its journal, if a run left one. */
export async function loadResults(path: string): Promise<ResultsDocument> {
  const { text, journal } = await readSnapshotAndJournal(path);
  const document = parseResults(text, path);
  if (journal.length === 0) return document;
  const state = JobState.fromDocument(document);
  for (const line of journal) {
    const entry = entryOf(line, (store, image) => state.imageUrl(store, image));
    // A line that fits no image of this job ends the replay, like a torn one.
    if (entry === undefined || !state.canApply(entry)) break;
    state.apply(entry);
  }
  const { writer, interrupted } = document;
  return state.toDocument({
    ...(writer ? { writer } : {}),
    ...(interrupted ? { interrupted } : {}),
  });
}

// A live run rotates its journal when a snapshot starts and replaces the
// snapshot when it is on disk. A snapshot and journals read across either
// swap do not belong together (replayed, they could show the job going
// backwards), so they count as a pair only if neither the snapshot read
// (held open: its inode cannot be reused) nor the journal changed identity
// meanwhile; otherwise, read again.
async function readSnapshotAndJournal(
  path: string,
): Promise<{ text: string; journal: JournalLine[] }> {
  for (let attempt = 1; ; attempt++) {
    let file: FileHandle | undefined;
    try {
      const journalBefore = await inodeOf(journalPathOf(path));
      file = await open(path, 'r');
      const { ino } = await file.stat();
      const text = await file.readFile('utf8');
      // The rotated journal (a snapshot was being replaced) comes first.
      const journal = [...readJournal(oldJournalPathOf(path)), ...readJournal(journalPathOf(path))];
      const unchanged =
        (await inodeOf(path)) === ino && (await inodeOf(journalPathOf(path))) === journalBefore;
      if (unchanged || attempt >= 5) return { text, journal };
    } catch (error) {
      throw new InputError(
        'E_RESULTS_FILE',
        `cannot read results file ${path}: ${describeFileError(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      await file?.close();
    }
  }
}

async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch {
    return undefined;
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
  if (!writer || writer.host !== hostname()) return false;
  try {
    process.kill(writer.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseResults(text: string, path: string): ResultsDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InputError(
      'E_RESULTS_FILE',
      `${path} is not an imgjob results file (not valid JSON)`,
    );
  }
  if ((value as { tool?: unknown } | null)?.tool !== 'imgjob') {
    throw new InputError('E_RESULTS_FILE', `${path} is not an imgjob results file`);
  }
  const problem = resultsProblem(value);
  if (problem !== undefined) {
    throw new InputError(
      'E_RESULTS_FILE',
      `${path} is not a valid imgjob results file: ${problem}`,
    );
  }
  return value as ResultsDocument;
}

function readJournal(path: string): JournalLine[] {
  try {
    return parseJournal(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}
