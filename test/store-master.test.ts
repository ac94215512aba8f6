import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InputError } from '../src/utils/errors.js';
import { parseStoreMaster, readStoreMaster } from '../src/input/store-master.js';

const HEADER = 'AreaCode,StoreName,StoreID';

/** The InputError a store master text is refused with. */
function refusal(text: string): InputError {
  try {
    parseStoreMaster(text, 'sm.csv');
  } catch (error) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected an InputError');
}

describe('parseStoreMaster', () => {
  it('reads quoted names with commas and doubled quotes, without a final newline', () => {
    const text = [
      HEADER,
      '8100021,"LAKSHMI GENERAL STORE, MAIN ROAD",S00339218',
      '8100034,"THE ""CORNER"" KIRANA",RP00002',
      '8100047,"A, ""B"", C",RP00003',
    ].join('\n');
    expect([...parseStoreMaster(text, 'sm.csv')]).toEqual(['S00339218', 'RP00002', 'RP00003']);
  });

  it('gives the same ids for CRLF, LF and CR line ends, with or without a final newline', () => {
    const lines = [HEADER, '1,"A, B",S1', '2,"multi\nline name",S2', '3,C,S3'];
    const results = ['\n', '\r\n', '\r'].flatMap((eol) => [
      [...parseStoreMaster(lines.join(eol), 'sm.csv')],
      [...parseStoreMaster(lines.join(eol) + eol, 'sm.csv')],
    ]);
    for (const ids of results) expect(ids).toEqual(['S1', 'S2', 'S3']);
  });

  it('tolerates a BOM, spaces around header names and ids, and blank lines', () => {
    const text = `\uFEFF AreaCode , StoreName ,StoreID\r\n1,A, S1 \r\n\r\n2,"B",  "S2"\r\n`;
    expect([...parseStoreMaster(text, 'sm.csv')]).toEqual(['S1', 'S2']);
  });

  it('reads a stray quote inside an unquoted name', () => {
    expect([...parseStoreMaster(`${HEADER}\n1,THE "CORNER" STORE,S1`, 'sm.csv')]).toEqual(['S1']);
  });

  it('takes a header without rows as a store master that knows no store', () => {
    expect(parseStoreMaster(HEADER, 'sm.csv').size).toBe(0);
  });

  it.each([
    ['', `sm.csv: empty, expected the header ${HEADER}`],
    ['\r\n\r\n', `sm.csv: empty, expected the header ${HEADER}`],
    [
      'StoreID,StoreName,AreaCode\n1,A,S1',
      `sm.csv: expected the header ${HEADER}, got "StoreID,StoreName,AreaCode"`,
    ],
    ['1,A,S1\n2,B,S2', `sm.csv: expected the header ${HEADER}, got "1,A,S1"`],
    [`${HEADER},Extra\n1,A,S1,x`, `sm.csv: expected the header ${HEADER}, got "${HEADER},Extra"`],
  ])('refuses a missing or different header: %j', (text, message) => {
    const error = refusal(text);
    expect(error).toMatchObject({ code: 'E_STORE_MASTER', problems: [message] });
  });

  it('names the line of every ragged row and every empty StoreID', () => {
    const text = [HEADER, '1,A,S1', '2,"B, C"', '', '3,D,S3,extra', '4,E,', '5,F, ', '6,G,S6'].join(
      '\r\n',
    );
    expect(refusal(text).problems).toEqual([
      'sm.csv: line 3: expected 3 fields, got 2',
      'sm.csv: line 5: expected 3 fields, got 4',
      'sm.csv: line 6: empty StoreID',
      'sm.csv: line 7: empty StoreID',
    ]);
  });

  it('counts the lines of a quoted multi-line name, with CRLF too', () => {
    const text = [HEADER, '1,"two\r\nlines",S1', '2,B'].join('\r\n');
    expect(refusal(text).problems).toEqual(['sm.csv: line 4: expected 3 fields, got 2']);
  });

  it('lists the first 20 problems and counts the rest', () => {
    const rows = Array.from({ length: 23 }, (_, i) => `${i},name,`);
    const { problems } = refusal([HEADER, ...rows].join('\n'));
    expect(problems).toHaveLength(21);
    expect(problems[20]).toBe('… and 3 more problems');
  });

  it('refuses broken CSV quoting with the line csv-parse names', () => {
    const error = refusal(`${HEADER}\n1,A,S1\n2,"unclosed,S2`);
    expect(error.code).toBe('E_STORE_MASTER');
    expect(error.message).toMatch(/^sm\.csv: not valid CSV: .*line 3/);
  });
});

describe('readStoreMaster', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imgjob-store-master-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the fixture: CRLF, quoted commas, doubled quotes, no final newline', async () => {
    const ids = await readStoreMaster('fixtures/store-master.csv');
    expect(ids.has('S00339218')).toBe(true);
    expect(ids.has('S01408764')).toBe(true);
    for (const id of ['RP00001', 'RP00002', 'RP00003']) expect(ids.has(id)).toBe(true);
    expect([...ids].every((id) => /^[A-Z]+\d+$/.test(id))).toBe(true);
  });

  it.each([
    ['missing.csv', 'no such file'],
    ['.', 'it is a folder, not a file'],
  ])('refuses an unreadable file (%s) with E_STORE_MASTER', async (name, reason) => {
    const path = join(dir, name);
    await expect(readStoreMaster(path)).rejects.toMatchObject({
      code: 'E_STORE_MASTER',
      message: `cannot read store master ${path}: ${reason}`,
    });
  });
});
