/**
 * Reads the store master: a CSV of known stores, `AreaCode,StoreName,StoreID`.
 * Store names hold commas and quotes, files come with CRLF or LF and often
 * without a final newline; only the ids matter to a run.
 */
import { readFile } from 'node:fs/promises';
import { CsvError, parse } from 'csv-parse/sync';

import { describeFileError, InputError, limitProblems } from '../utils/errors.js';

const HEADER = ['AreaCode', 'StoreName', 'StoreID'] as const;
const ID_COLUMN = HEADER.indexOf('StoreID');

/**
 * Reads a store master file.
 * @throws {InputError} `E_STORE_MASTER` when the file cannot be read or breaks a rule.
 */
export async function readStoreMaster(path: string): Promise<ReadonlySet<string>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const message = `cannot read store master ${path}: ${describeFileError(error)}`;
    throw new InputError('E_STORE_MASTER', message, { cause: error });
  }
  return parseStoreMaster(text, path);
}

/**
 * The store ids of a store master text, trimmed.
 * @param source Names the file in messages.
 * @throws {InputError} `E_STORE_MASTER` listing every problem, one `source: line N: what` line each.
 */
export function parseStoreMaster(text: string, source: string): ReadonlySet<string> {
  const [header, ...rows] = parseRows(text, source);
  checkHeader(header?.record, source);
  const ids = new Set<string>();
  const problems: string[] = [];
  for (const { record, line } of rows) {
    const id = record[ID_COLUMN]?.trim() ?? '';
    if (record.length !== HEADER.length) {
      problems.push(
        `${source}: line ${line}: expected ${HEADER.length} fields, got ${record.length}`,
      );
    } else if (id === '') {
      problems.push(`${source}: line ${line}: empty StoreID`);
    } else {
      ids.add(id);
    }
  }
  if (problems.length > 0) throw new InputError('E_STORE_MASTER', limitProblems(problems));
  return ids;
}

type Row = { readonly record: readonly string[]; readonly line: number };

function parseRows(text: string, source: string): Row[] {
  try {
    // csv-parse counts a CRLF inside a quoted field as two lines; with LF
    // only, the line numbers in messages are right for either kind of file.
    const lf = text.replace(/\r\n?/g, '\n');
    const lines: number[] = [];
    const records = parse(lf, {
      bom: true,
      relax_column_count: true,
      relax_quotes: true,
      trim: true,
      skip_empty_lines: true,
      on_record: (record, info) => {
        lines.push(info.lines);
        return record;
      },
    });
    return records.map((record, i) => ({ record, line: lines[i] ?? 0 }));
  } catch (error) {
    if (!(error instanceof CsvError)) throw error;
    throw new InputError('E_STORE_MASTER', `${source}: not valid CSV: ${error.message}`, {
      cause: error,
    });
  }
}

function checkHeader(header: readonly string[] | undefined, source: string): void {
  const expected = HEADER.join(',');
  if (header === undefined) {
    throw new InputError('E_STORE_MASTER', `${source}: empty, expected the header ${expected}`);
  }
  const found = header.map((name) => name.trim()).join(',');
  if (found !== expected) {
    const message = `${source}: expected the header ${expected}, got ${JSON.stringify(found)}`;
    throw new InputError('E_STORE_MASTER', message);
  }
}
