/**
 * The three forms of a manifest — the Retail Pulse JSON, JSON Lines, CSV —
 * read as streams: the same job from each, every problem with its line, and
 * a peak memory that does not grow with the text a manifest carries.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { parseManifest, readManifest } from '../src/input/manifest.js';
import type { JobInput, ResultsDocument } from '../src/types.js';
import { ManifestError } from '../src/utils/errors.js';
import { loadResults } from '../src/results/reader.js';
import { startFaultServer } from './helpers/fault-server.js';
import { runJobHere } from './helpers/main.js';
import { spell, type Visit } from './helpers/manifest-forms.js';

const dir = mkdtempSync(join(tmpdir(), 'imgjob-forms-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function problemsOf(text: string, format: 'rp' | 'jsonl' | 'csv'): readonly string[] {
  try {
    parseManifest(text, 'm', format);
  } catch (error) {
    if (error instanceof ManifestError) return error.problems;
    throw error;
  }
  throw new Error('expected a ManifestError');
}

const url = (n: number): string => `https://cdn.example.com/${n}.jpg`;
const interleaved: Visit[] = [
  { store_id: 'B', image_url: [url(1), url(2)], visit_time: 't0' },
  { store_id: 'A', image_url: [url(3)], visit_time: 't1' },
  { store_id: 'B', image_url: [url(4)], visit_time: 't2' },
  { store_id: 'A', image_url: [url(5), url(6)] },
];

/** What a job is, whatever its form: its stores, visits and fingerprint. */
const jobOf = (input: JobInput) => ({
  stores: input.stores,
  visits: input.visits,
  digest: input.digest,
  imageCount: input.imageCount,
});

describe('the same job in each form', () => {
  it('groups the same stores and visits, with the same digest', () => {
    const forms = spell(interleaved);
    const rp = jobOf(parseManifest(forms.rp, 'm'));
    expect(rp.stores.map((store) => store.storeId)).toEqual(['B', 'A']);
    expect(jobOf(parseManifest(forms.jsonl, 'm', 'jsonl'))).toEqual(rp);
    expect(jobOf(parseManifest(forms.csv, 'm', 'csv'))).toEqual(rp);
  });

  it('reads CSV columns in any order, ignores other columns, takes quotes, CRLF and a BOM', () => {
    const csv = [
      '\uFEFFnote,image_url,store_id,visit_time',
      `"a, b",${url(1)},B,t0`,
      `x,${url(2)},B,t0`,
      `"say ""hi""",${url(3)},A,t1`,
      `,${url(4)},B,t2`,
      `,${url(5)},A,`,
      `,${url(6)},A,`,
    ].join('\r\n');
    expect(jobOf(parseManifest(csv, 'm', 'csv'))).toEqual(
      jobOf(parseManifest(spell(interleaved).rp, 'm')),
    );
  });

  it('takes an empty JSON Lines file and a CSV of only its header as an empty job', () => {
    expect(parseManifest('\n\n', 'm', 'jsonl')).toMatchObject({ stores: [], imageCount: 0 });
    expect(parseManifest('store_id,image_url\n', 'm', 'csv')).toMatchObject({ stores: [] });
  });
});

describe('a broken flat manifest: every problem, with its line', () => {
  it('JSON Lines: a syntax error, a bad visit and a non-object, blank lines counted', () => {
    const text = [
      JSON.stringify(interleaved[0]),
      '',
      '{"store_id": "A", "image_url": ["https://h/a"],}',
      JSON.stringify({ store_id: 'A', image_url: ['ftp://h/a', url(1)] }),
      '42',
    ].join('\r\n');
    expect(problemsOf(text, 'jsonl')).toEqual([
      "line 3: not valid JSON: unexpected '}' at column 48",
      'line 4: image_url[0]: not an http(s) URL, got "ftp://h/a"',
      'line 5: expected an object, got 42',
    ]);
  });

  it('CSV: a wrong header, then rows of the wrong width, bad ids and URLs', () => {
    expect(problemsOf('store,url\nS1,https://h/a\n', 'csv')).toEqual([
      'line 1: expected the header store_id,image_url[,visit_time], got "store,url"',
    ]);
    const text = ['store_id,image_url', 'S1,https://h/a', 'S1', ',https://h/b', 'S2,h/c'].join(
      '\n',
    );
    expect(problemsOf(text, 'csv')).toEqual([
      'line 3: expected 2 fields, got 1',
      'line 4: store_id: expected a non-empty string, got ""',
      'line 5: image_url: not an http(s) URL, got "h/c"',
    ]);
    expect(problemsOf('', 'csv')).toEqual([
      'empty, expected the header store_id,image_url[,visit_time]',
    ]);
    expect(problemsOf('store_id,image_url\n"S1,https://h/a\n', 'csv')).toEqual([
      expect.stringMatching(/^not valid CSV: .*quote/i),
    ]);
  });
});

describe('readManifest', () => {
  it('picks the form by the extension, or as told', async () => {
    const forms = spell(interleaved);
    const expected = jobOf(parseManifest(forms.rp, 'm'));
    const files = { 'job.JSONL': forms.jsonl, 'job.csv': forms.csv, 'job.txt': forms.rp };
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(join(dir, name), text);
      expect(jobOf(await readManifest(join(dir, name)))).toEqual(expected);
    }
    writeFileSync(join(dir, 'rows.txt'), forms.csv);
    expect(jobOf(await readManifest(join(dir, 'rows.txt'), undefined, 'csv'))).toEqual(expected);
    const stdin = Readable.from([Buffer.from(forms.jsonl)]);
    expect(jobOf(await readManifest('-', stdin, 'jsonl'))).toEqual(expected);
  });

  it('names the file it cannot read', async () => {
    await expect(readManifest(join(dir, 'missing.csv'))).rejects.toMatchObject({
      code: 'E_MANIFEST',
      problems: [expect.stringContaining('missing.csv')],
    });
  });
});

describe('read in chunks of any size', () => {
  /** The verdict on a manifest: its job, or its problem lines. */
  async function verdict(read: () => JobInput | Promise<JobInput>): Promise<unknown> {
    try {
      return jobOf(await read());
    } catch (error) {
      if (error instanceof ManifestError) return error.problems;
      throw error;
    }
  }
  const chunked = (bytes: Buffer, size: number): Readable =>
    Readable.from(
      Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) =>
        bytes.subarray(i * size, (i + 1) * size),
      ),
    );
  const visit = fc.record(
    {
      store_id: fc.constantFrom('S1', 'Stör€', '', '😀'),
      image_url: fc.array(fc.constantFrom(url(1), 'https://bücher.example/ä😀', 'ftp://x'), {
        maxLength: 2,
      }),
      visit_time: fc.constantFrom('t', '€'),
    },
    { requiredKeys: ['store_id', 'image_url'] },
  );
  // Edits that break the text: a syntax error, a key given twice, a byte that is not UTF-8.
  const edit = fc.oneof(
    fc.constant(''),
    fc.constantFrom('}', '"', ',', '\\', '"store_id":"x",', '"count":1,'),
    fc.constantFrom([0xff], [0xe2, 0x82], [0xc0, 0xaf]),
  );

  it('gives what the whole text gives, in every form', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(visit, { maxLength: 4 }),
        fc.constantFrom<'rp' | 'jsonl' | 'csv'>('rp', 'jsonl', 'csv'),
        edit,
        fc.nat(),
        fc.integer({ min: 1, max: 9 }),
        async (visits, form, broken, at, size) => {
          const text = Buffer.from(spell(visits)[form]);
          const cut = at % (text.length + 1);
          const inserted = Buffer.from(broken as string);
          const bytes = Buffer.concat([text.subarray(0, cut), inserted, text.subarray(cut)]);
          const whole = await verdict(() => parseManifest(bytes, '-', form));
          expect(await verdict(() => readManifest('-', chunked(bytes, size), form))).toEqual(whole);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('run, in each form', { tags: ['e2e'] }, () => {
  it('gives the same results, and a results file of one form resumes from another', async () => {
    const server = await startFaultServer();
    try {
      const images = ['image.png', 'image.gif', 'missing.png', 'image.bmp'];
      const job: Visit[] = Array.from({ length: 12 }, (_, visit) => ({
        store_id: `S${visit % 5}`,
        image_url: [0, 1].map((k) => server.url(`/img/${images[(visit + k) % 4] ?? ''}`)),
        visit_time: `t${visit}`,
      }));
      const forms = spell(job);
      const documents: ResultsDocument[] = [];
      for (const [form, text] of Object.entries(forms)) {
        const manifest = join(dir, `run.${form === 'rp' ? 'json' : form}`);
        writeFileSync(manifest, text);
        const out = join(dir, `run-${form}.results.json`);
        const run = await runJobHere(['run', manifest, '-o', out, '--gpu-delay', '0', '--json']);
        expect(run.code, run.stderr).toBe(1); // missing.png fails its stores
        documents.push(await loadResults(out));
      }
      const [rp, ...flat] = documents.map(comparable);
      for (const document of flat) expect(document).toEqual(rp);

      // The CSV job's results file resumed with the JSON manifest: the same job.
      const resumed = await runJobHere([
        'run',
        join(dir, 'run.json'),
        '-o',
        join(dir, 'run-csv.results.json'),
        '--resume',
        '--gpu-delay',
        '0',
      ]);
      expect(resumed.stderr).not.toMatch(/different manifest/);
      expect(resumed.stdout).toMatch(/no image was left to process/);
    } finally {
      await server.close();
    }
  });
});

/** Every store and image with its result; times and where the manifest was left out. */
function comparable(document: ResultsDocument): unknown {
  return {
    status: document.status,
    counts: document.counts,
    digest: document.manifest_digest,
    stores: document.stores.map((store) => ({
      ...store,
      images: store.images.map((image) => {
        const {
          download_ms: _download,
          gpu_ms: _gpu,
          ...rest
        } = image as typeof image & {
          download_ms?: number;
          gpu_ms?: number;
        };
        return rest;
      }),
    })),
  };
}
