import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InputError, ManifestError } from '../src/utils/errors.js';
import { canonicalManifest, parseManifest, readManifest } from '../src/input/manifest.js';
import { runMain } from './helpers/main.js';

const url = (n: number): string => `https://cdn.example.com/${n}.jpg`;
const visit = (store_id: unknown, image_url: unknown, extra: object = {}): object => ({
  store_id,
  image_url,
  ...extra,
});
const manifest = (visits: unknown[], count: unknown = visits.length): string =>
  JSON.stringify({ count, visits });

/** The problem lines of a manifest that must be rejected. */
function problemsOf(text: string | Uint8Array, source = 'm.json'): readonly string[] {
  try {
    parseManifest(text, source);
  } catch (error) {
    if (error instanceof ManifestError) return error.problems;
    throw error;
  }
  throw new Error('expected a ManifestError');
}

describe('parseManifest: a valid manifest', () => {
  it('merges all visits of one store_id in manifest order, stores by first appearance', () => {
    const job = parseManifest(
      manifest([
        visit('B', [url(1), url(2)], { visit_time: 't0' }),
        visit('A', [url(3)]),
        visit('B', [url(4)], { visit_time: 't2' }),
        visit('C', [url(5)], { visit_time: 't3' }),
        visit('A', [url(6), url(7)], { visit_time: 't4' }),
      ]),
      'm.json',
    );
    expect(job.stores.map((store) => ({ ...store, urls: [...store.urls] }))).toEqual([
      { storeId: 'B', index: 0, visitTimes: ['t0', 't2'], urls: [url(1), url(2), url(4)] },
      { storeId: 'A', index: 1, visitTimes: ['t4'], urls: [url(3), url(6), url(7)] },
      { storeId: 'C', index: 2, visitTimes: ['t3'], urls: [url(5)] },
    ]);
    expect(job.visits.map((visit) => visit.store)).toEqual([0, 1, 0, 2, 1]);
    expect(job.imageCount).toBe(7);
    expect(job.source).toBe('m.json');
    expect(job.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('takes count 0 with no visits as an empty job', () => {
    const job = parseManifest('{ "count": 0, "visits": [] }', 'empty.json');
    expect(job).toMatchObject({ stores: [], imageCount: 0, visits: [] });
  });

  it('ignores unknown fields and keeps only the fields it knows', () => {
    const text = JSON.stringify({
      count: 1,
      job_name: 'x',
      visits: [{ store_id: 'S1', image_url: [url(1)], visit_time: 't', camera: { id: 3 } }],
    });
    expect(JSON.parse(canonicalManifest(parseManifest(text, 'm.json')))).toEqual({
      count: 1,
      visits: [{ image_url: [url(1)], store_id: 'S1', visit_time: 't' }],
    });
  });

  it('accepts http and https in any case, ports, queries, IPv6 and unicode hosts', () => {
    const urls = [
      'HTTP://EXAMPLE.COM/A.JPG',
      'https://example.com:8443/a.jpg?w=1&h=2#x',
      'http://[::1]:8080/a.png',
      'https://bücher.example/ä.jpg',
      'http://127.0.0.1/a%20b.jpg',
    ];
    expect(parseManifest(manifest([visit('S', urls)]), 'm').imageCount).toBe(5);
  });

  it('keeps store ids as given, spaces included', () => {
    const job = parseManifest(manifest([visit(' S1 ', [url(1)]), visit('S1', [url(2)])]), 'm');
    expect(job.stores.map((store) => store.storeId)).toEqual([' S1 ', 'S1']);
  });

  it('accepts a file that starts with a byte-order mark', () => {
    expect(parseManifest(`\uFEFF${manifest([])}`, 'm').stores).toEqual([]);
  });
});

describe('parseManifest: every problem names its place', () => {
  const ok = [url(1)];
  it.each([
    ['null', '(root): expected an object, got null'],
    ['[]', '(root): expected an object, got []'],
    ['"x"', '(root): expected an object, got "x"'],
    ['3', '(root): expected an object, got 3'],
    ['{"visits": []}', 'count: expected a whole number ≥ 0, but it is missing'],
    [manifest([], '0'), 'count: expected a whole number ≥ 0, got "0"'],
    [manifest([], -1), 'count: expected a whole number ≥ 0, got -1'],
    [manifest([], 1.5), 'count: expected a whole number ≥ 0, got 1.5'],
    [manifest([], 1e300), 'count: expected a whole number ≥ 0, got 1e+300'],
    [manifest([visit('S', ok)], 3), 'count: 3 does not match the 1 visit'],
    [manifest([visit('S', ok), visit('T', ok)], 0), 'count: 0 does not match the 2 visits'],
    ['{"count": 0}', 'visits: expected an array, but it is missing'],
    ['{"count": 0, "visits": {}}', 'visits: expected an array, got {}'],
    [manifest(['S1']), 'visits[0]: expected an object, got "S1"'],
    [
      manifest([visit(undefined, ok)]),
      'visits[0].store_id: expected a non-empty string, but it is missing',
    ],
    [manifest([visit('', ok)]), 'visits[0].store_id: expected a non-empty string, got ""'],
    [manifest([visit(' \t', ok)]), 'visits[0].store_id: expected a non-empty string, got " \\t"'],
    [manifest([visit(42, ok)]), 'visits[0].store_id: expected a non-empty string, got 42'],
    [
      manifest([visit('S', undefined)]),
      'visits[0].image_url: expected a non-empty array of http(s) URLs, but it is missing',
    ],
    [
      manifest([visit('S', [])]),
      'visits[0].image_url: expected a non-empty array of http(s) URLs, got []',
    ],
    [
      manifest([visit('S', url(1))]),
      `visits[0].image_url: expected a non-empty array of http(s) URLs, got "${url(1)}"`,
    ],
    [
      manifest([visit('S', [null])]),
      'visits[0].image_url[0]: expected an http(s) URL string, got null',
    ],
    [
      manifest([visit('S', ['ftp://h/a.jpg'])]),
      'visits[0].image_url[0]: not an http(s) URL, got "ftp://h/a.jpg"',
    ],
    [
      manifest([visit('S', ['/a.jpg'])]),
      'visits[0].image_url[0]: not an http(s) URL, got "/a.jpg"',
    ],
    [
      manifest([visit('S', ['https:h/a'])]),
      'visits[0].image_url[0]: not an http(s) URL, got "https:h/a"',
    ],
    [
      manifest([visit('S', ['http://[::1/'])]),
      'visits[0].image_url[0]: not an http(s) URL, got "http://[::1/"',
    ],
    [
      manifest([visit('S', ['https://h/a b.jpg'])]),
      'visits[0].image_url[0]: not an http(s) URL (it contains whitespace), got "https://h/a b.jpg"',
    ],
    [
      manifest([visit('S', [' https://h/a.jpg'])]),
      'visits[0].image_url[0]: not an http(s) URL (it contains whitespace), got " https://h/a.jpg"',
    ],
    [
      manifest([visit('S', ['https://user:secret@h/a.jpg'])]),
      'visits[0].image_url[0]: must not carry a user name or password',
    ],
    [
      manifest([visit('S', ok, { visit_time: 5 })]),
      'visits[0].visit_time: expected a string, got 5',
    ],
    [
      manifest([visit('S', ok, { visit_time: null })]),
      'visits[0].visit_time: expected a string, got null',
    ],
  ])('%s → %s', (text, problem) => {
    expect(problemsOf(text)).toEqual([problem]);
  });

  it('reports every problem of the manifest at once, in one line each', () => {
    const text = manifest(
      [
        visit('S1', [url(1)]),
        visit('', [url(2), 'images/a.gif', 'ftp://h/b.webp']),
        { image_url: [] },
        visit('S3', [url(3)], { visit_time: false }),
      ],
      5,
    );
    expect(problemsOf(text)).toEqual([
      'visits[1].store_id: expected a non-empty string, got ""',
      'visits[1].image_url[1]: not an http(s) URL, got "images/a.gif"',
      'visits[1].image_url[2]: not an http(s) URL, got "ftp://h/b.webp"',
      'visits[2].store_id: expected a non-empty string, but it is missing',
      'visits[2].image_url: expected a non-empty array of http(s) URLs, got []',
      'visits[3].visit_time: expected a string, got false',
      'count: 5 does not match the 4 visits',
    ]);
  });

  it('lists the first 20 problems and counts the rest', () => {
    const problems = problemsOf(
      manifest([
        visit(
          'S',
          Array.from({ length: 25 }, (_, i) => `x${i}`),
        ),
      ]),
    );
    expect(problems).toHaveLength(21);
    expect(problems[19]).toBe('visits[0].image_url[19]: not an http(s) URL, got "x19"');
    expect(problems[20]).toBe('… and 5 more problems');
  });

  it('shortens a long value it quotes', () => {
    const [problem] = problemsOf(manifest([visit('S', [`ftp://${'a'.repeat(200)}`])]));
    expect(problem).toBe(
      `visits[0].image_url[0]: not an http(s) URL, got "ftp://${'a'.repeat(71)}…"`,
    );
  });

  it('throws a ManifestError with code E_MANIFEST, the source and the lines as message', () => {
    const error = (() => {
      try {
        parseManifest('{"count": 1, "visits": []}', 'jobs/a.json');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ManifestError);
    expect(error).toMatchObject({
      code: 'E_MANIFEST',
      source: 'jobs/a.json',
      message: 'count: 1 does not match the 0 visits',
    });
  });
});

describe('parseManifest: JSON syntax', () => {
  it.each([
    ['{"count": 0,\n  "visits": [\n    }', "not valid JSON: unexpected '}' at line 3 column 5"],
    ['{"count": 0, "visits": [],}', "not valid JSON: unexpected '}' at line 1 column 27"],
    ['{"count": 0', 'not valid JSON: unexpected end of input at line 1 column 12'],
    ['{"count": 0}\n{}', "not valid JSON: unexpected '{' at line 2 column 1"],
    ["{'count': 0}", "not valid JSON: unexpected ''' at line 1 column 2"],
    [
      '{"a": "x\ty"}',
      'not valid JSON: unescaped character U+0009 inside a string at line 1 column 9',
    ],
    ['{"a": "\\x"}', 'not valid JSON: bad escape sequence in a string at line 1 column 8'],
    ['{"a": "\\u12g4"}', 'not valid JSON: bad escape sequence in a string at line 1 column 8'],
    ['\r\n{"a": "open', 'not valid JSON: unterminated string at line 2 column 7'],
    ['[01]', "not valid JSON: unexpected '1' at line 1 column 3"],
    ['[tru]', "not valid JSON: unexpected 't' at line 1 column 2"],
    ['{"a" 1}', "not valid JSON: unexpected '1' at line 1 column 6"],
    ['\u00a0{}', 'not valid JSON: unexpected character U+00A0 at line 1 column 1'],
    ['', 'empty, expected a JSON object'],
    [' \n\t', 'empty, expected a JSON object'],
  ])('%j → %s', (text, problem) => {
    expect(problemsOf(text)).toEqual([problem]);
  });

  it('finds the error in deeply nested junk without running out of stack', () => {
    expect(problemsOf('['.repeat(100_000))).toEqual([
      'not valid JSON: unexpected end of input at line 1 column 100001',
    ]);
    expect(problemsOf(`${'['.repeat(50_000)}${']'.repeat(50_000)}`)).toEqual([
      '(root): expected an object, got an array',
    ]);
  });

  it('leaves naming the file to the caller, which has it in ManifestError.source', () => {
    expect(() => parseManifest('{', '-')).toThrow(
      expect.objectContaining({
        source: '-',
        problems: ['not valid JSON: unexpected end of input at line 1 column 2'],
      }) as Error,
    );
  });
});

describe('parseManifest: bytes that are not UTF-8, keys given twice', () => {
  const good = Buffer.from(manifest([visit('Stör€', [url(1)])]));
  const withByte = (text: string, ...bytes: number[]): Buffer =>
    Buffer.concat([Buffer.from(text), Buffer.from(bytes)]);

  it.each([
    ['a Latin-1 byte', withByte('{"count": 1, "visits": [{"store_id": "St', 0xf6, 0x72), 40],
    ['a character cut short at the end', withByte('{"a": "€', 0xe2, 0x82), 10],
    ['an overlong encoding of "/"', withByte('{"a": "', 0xc0, 0xaf, 0x22, 0x7d), 7],
    // The text before holds a real U+FFFD (3 bytes), which must not be taken for the bad byte.
    ['a UTF-16 surrogate spelled in UTF-8', withByte('["\uFFFD', 0xed, 0xa0, 0x80), 5],
    ['a byte after a real U+FFFD', withByte('{"a": "\uFFFD\uFFFD', 0xff), 13],
  ])('refuses %s, naming its byte offset', (_name, bytes, offset) => {
    const [problem] = problemsOf(bytes);
    expect(problem).toMatch(new RegExp(`^not valid UTF-8: .* at byte offset ${offset}$`));
  });

  it('reads valid UTF-8 bytes, with or without a byte-order mark', () => {
    expect(parseManifest(good, 'm').stores[0]?.storeId).toBe('Stör€');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), good]);
    expect(parseManifest(bom, 'm').stores[0]?.storeId).toBe('Stör€');
  });

  it.each([
    ['{"count": 0, "visits": [], "count": 0}', ['(root): duplicate key "count"']],
    [
      manifest([visit('S1', [url(1)]), visit('S2', [url(2)]), visit('S3', [url(3)])]).replace(
        '"store_id":"S3"',
        '"store_id":"S3","store_id":"S4"',
      ),
      ['visits[2]: duplicate key "store_id"'],
    ],
    // The same key spelled two ways is still the same key to JSON.parse.
    ['{"count": 0, "visits": [], "c\u006funt": 1}', ['(root): duplicate key "count"']],
    [
      '{"count": 0, "visits": [], "x": {"a,b": [{"k": 1, "k": 2}], "a,b": 1}}',
      ['x["a,b"][0]: duplicate key "k"', 'x: duplicate key "a,b"'],
    ],
  ])('refuses a key given twice in one object, naming the object: %s', (text, problems) => {
    expect(problemsOf(text)).toEqual(problems);
  });

  it('takes the same key in different objects, and keys that only look alike', () => {
    const text = JSON.stringify({
      count: 2,
      visits: [visit('S', [url(1)], { 'k"': 1, 'k\\': 2 }), visit('S', [url(2)], { k: 1 })],
    });
    expect(parseManifest(text, 'm').imageCount).toBe(2);
  });

  it('refuses both through readManifest with exit-2 errors naming the file', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'imgjob-utf8-'));
    const path = join(folder, 'latin1.json');
    await writeFile(path, withByte('{"count": 0, "visits": [], "n": "', 0xe9, 0x22, 0x7d));
    await expect(readManifest(path)).rejects.toMatchObject({
      code: 'E_MANIFEST',
      source: path,
      problems: ['not valid UTF-8: byte 0xe9 at byte offset 33'],
    });
    await rm(folder, { recursive: true, force: true });
  });
});

describe('imgjob run: a manifest that is not UTF-8 or repeats a key', () => {
  it('exits 2 with one line naming the file and the problem, before any results file', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'imgjob-dupkey-'));
    const path = join(folder, 'm.json');
    const twice =
      '{"count": 1, "visits": [{"store_id": "A", "store_id": "B", "image_url": ["https://h/1.png"]}]}';
    await writeFile(path, twice);
    const run = await runMain(['run', path, '--gpu-delay', '0']);
    expect(run).toMatchObject({
      code: 2,
      stderr: `imgjob: ${path}: visits[0]: duplicate key "store_id"\n`,
    });
    const stdin = Buffer.concat([
      Buffer.from('{"count": 0, "visits": [], "n": "'),
      Buffer.from([0xe9, 0x22, 0x7d]),
    ]);
    const piped = await runMain(['run', '-', '-o', join(folder, 'out.json')], { stdin });
    expect(piped).toMatchObject({
      code: 2,
      stderr: 'imgjob: stdin: not valid UTF-8: byte 0xe9 at byte offset 33\n',
    });
    expect(await readdir(folder)).toEqual(['m.json']);
    await rm(folder, { recursive: true, force: true });
  });
});

describe('parseManifest: digest', () => {
  const base = {
    count: 1,
    visits: [{ store_id: 'S1', image_url: [url(1), url(2)], visit_time: 't' }],
  };
  const digestOf = (value: unknown, indent?: number): string =>
    parseManifest(JSON.stringify(value, null, indent), 'm').digest;

  it('stays the same when the file is reformatted, keys reordered or unknown fields added', () => {
    const reordered = {
      visits: [{ visit_time: 't', image_url: [url(1), url(2)], store_id: 'S1', note: 'x' }],
      count: 1,
      extra: [1, 2],
    };
    expect(digestOf(base, 4)).toBe(digestOf(base));
    expect(digestOf(reordered)).toBe(digestOf(base));
  });

  it('changes with anything the job depends on', () => {
    const digests = [
      base,
      { ...base, visits: [{ ...base.visits[0], image_url: [url(2), url(1)] }] },
      { ...base, visits: [{ ...base.visits[0], store_id: 'S2' }] },
      { ...base, visits: [{ ...base.visits[0], visit_time: 'u' }] },
      { ...base, visits: [{ store_id: 'S1', image_url: [url(1), url(2)] }] },
    ].map((value) => digestOf(value));
    expect(new Set(digests).size).toBe(digests.length);
  });
});

describe('readManifest', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'imgjob-manifest-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a manifest file and names it as the source', async () => {
    const path = join(dir, 'job.json');
    await writeFile(path, manifest([visit('S1', [url(1)])]));
    const job = await readManifest(path);
    expect(job).toMatchObject({ source: path, imageCount: 1 });
  });

  it('accepts a Latin-1 URL after 10,000 others (Node 20 misjudged them once optimised)', async () => {
    // Node 20's optimised URL.canParse reads such a string as broken UTF-8:
    // this file was refused at its last URL before canParseUrl.
    const path = join(dir, 'latin1-last.json');
    const visits = Array.from({ length: 200 }, (_, s) =>
      visit(
        `S${String(s)}`,
        Array.from({ length: 50 }, (_, i) => url(s * 50 + i)),
      ),
    );
    await writeFile(path, manifest([...visits, visit('Z', ['https://bücher.example/ä.jpg'])]));
    const job = await readManifest(path);
    expect(job.imageCount).toBe(10_001);
  });

  it('reads stdin for `-`, even when a character is split across chunks', async () => {
    const bytes = Buffer.from(manifest([visit('Stör€', [url(1)])]));
    const cut = bytes.indexOf(Buffer.from('€')) + 1;
    const stdin = Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]);
    const job = await readManifest('-', stdin);
    expect(job.source).toBe('-');
    expect(job.stores[0]?.storeId).toBe('Stör€');
  });

  it('reads the demo fixture and refuses the invalid one', async () => {
    const path = 'fixtures/manifests/demo.json';
    const raw = JSON.parse(await readFile(path, 'utf8')) as {
      visits: { store_id: string; image_url: string[] }[];
    };
    const demo = await readManifest(path);
    expect(demo.stores.map((store) => store.storeId)).toEqual([
      ...new Set(raw.visits.map((v) => v.store_id)),
    ]);
    expect(demo.imageCount).toBe(raw.visits.flatMap((v) => v.image_url).length);
    await expect(readManifest('fixtures/manifests/invalid.json')).rejects.toThrow(ManifestError);
  });

  it.each([
    ['missing.json', 'no such file'],
    ['folder', 'it is a folder, not a file'],
  ])('refuses an unreadable manifest (%s) with E_MANIFEST', async (name, reason) => {
    await mkdir(join(dir, 'folder'), { recursive: true });
    const path = join(dir, name);
    const error: unknown = await readManifest(path).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InputError);
    expect(error).not.toBeInstanceOf(ManifestError);
    expect(error).toMatchObject({
      code: 'E_MANIFEST',
      message: `cannot read manifest ${path}: ${reason}`,
    });
  });

  it('parses a manifest of 100,000 images', async () => {
    const visits = Array.from({ length: 1000 }, (_, store) => ({
      store_id: `S${String(store % 700).padStart(8, '0')}`,
      image_url: Array.from(
        { length: 100 },
        (_, i) => `https://cdn.example.com/s/${store}/${i}.jpg`,
      ),
      visit_time: '2024-11-15T10:00:00Z',
    }));
    const path = join(dir, 'big.json');
    await writeFile(path, JSON.stringify({ count: visits.length, visits }, null, 2));
    const job = await readManifest(path);
    expect(job.imageCount).toBe(100_000);
    expect(job.stores).toHaveLength(700);
    expect(job.stores[0]?.urls).toHaveLength(200);
  });
});
