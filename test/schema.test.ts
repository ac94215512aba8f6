import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

import { ManifestError } from '../src/utils/errors.js';
import { parseManifest } from '../src/input/manifest.js';
import { manifestSchema } from '../src/input/manifest-schema.js';
import type { ImageResult, ResultsDocument } from '../src/types.js';

const MANIFEST_SCHEMA = 'schema/manifest.schema.json';
const RESULTS_SCHEMA = 'schema/results.schema.json';

const readJson = async (path: string): Promise<unknown> =>
  JSON.parse(await readFile(path, 'utf8')) as unknown;

async function compile(path: string): Promise<(data: unknown) => boolean> {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  // ajv-formats is CommonJS: under NodeNext its default import is module.exports.
  addFormats.default(ajv);
  const validate = ajv.compile((await readJson(path)) as object);
  return (data) => validate(data);
}

function imgjobAccepts(text: string): boolean {
  try {
    parseManifest(text, 'm.json');
    return true;
  } catch (error) {
    if (error instanceof ManifestError) return false;
    throw error;
  }
}

// Compiled once: ajv takes a good 50 ms for each compilation.
const validateManifest = await compile(MANIFEST_SCHEMA);
const validateResults = await compile(RESULTS_SCHEMA);

describe('manifest.schema.json', () => {
  // Generated from the zod schema, so the two cannot drift apart. After a
  // change to the rules, `npx vitest run test/schema.test.ts -u` rewrites it.
  it('is the JSON Schema of the zod manifest schema', async () => {
    const { $schema, ...generated } = z.toJSONSchema(manifestSchema, {
      target: 'draft-2020-12',
      io: 'input',
    });
    const schema = {
      $schema,
      $id: 'urn:imgjob:schema:manifest',
      title: generated.title,
      description: generated.description,
      ...generated,
    };
    const options = await prettier.resolveConfig(MANIFEST_SCHEMA);
    const text = await prettier.format(JSON.stringify(schema), { ...options, parser: 'json' });
    await expect(text).toMatchFileSnapshot(`../${MANIFEST_SCHEMA}`);
  });

  it('accepts the demo and empty fixtures and refuses the invalid one, as imgjob does', async () => {
    for (const [name, valid] of [
      ['demo', true],
      ['empty', true],
      ['invalid', false],
    ] as const) {
      const text = await readFile(`fixtures/manifests/${name}.json`, 'utf8');
      expect(validateManifest(JSON.parse(text)), name).toBe(valid);
      expect(imgjobAccepts(text), name).toBe(valid);
    }
  });

  it.each([
    ['a relative URL', { count: 1, visits: [{ store_id: 'S', image_url: ['a.jpg'] }] }],
    ['an ftp URL', { count: 1, visits: [{ store_id: 'S', image_url: ['ftp://h/a'] }] }],
    ['an empty image_url', { count: 1, visits: [{ store_id: 'S', image_url: [] }] }],
    ['a blank store_id', { count: 1, visits: [{ store_id: ' ', image_url: ['http://h/a'] }] }],
    ['a negative count', { count: -1, visits: [] }],
    ['no visits', { count: 0 }],
  ])('refuses %s', (_name, manifest) => {
    expect(validateManifest(manifest)).toBe(false);
  });
});

describe('results.schema.json', () => {
  const done: ImageResult = {
    url: 'http://h/a.jpg',
    status: 'done',
    width: 640,
    height: 480,
    perimeter: 2240,
    type: 'jpg',
    bytes: 52_113,
    attempts: 1,
    gpu_ms: 250,
    download_ms: 12,
  };
  // Typed, so that a field the types add makes this example (and the schema) due for an update.
  const document: ResultsDocument = {
    schema_version: 1,
    tool: 'imgjob',
    job_id: 'job-1',
    status: 'failed',
    error: [{ store_id: 'S2', error: 'image 1 (http://h/b.jpg): HTTP 404' }],
    manifest_digest: 'a'.repeat(64),
    manifest_source: 'jobs/a.json',
    created_at: '2024-11-15T10:00:00.000Z',
    updated_at: '2024-11-15T10:00:05.000Z',
    finished_at: '2024-11-15T10:00:05.000Z',
    writer: { pid: 4242, host: 'worker-1' },
    options: {
      gpu_delay: '100-400',
      seed: 7,
      header_only: false,
      max_bytes: 52_428_800,
      store_master: null,
    },
    counts: { stores: 3, images: 6, done: 2, failed: 1, skipped: 2, pending: 1 },
    stores: [
      { store_id: 'S1', status: 'completed', visit_times: ['t0'], images: [done, done] },
      {
        store_id: 'S2',
        status: 'failed',
        error: 'image 1 (http://h/b.jpg): HTTP 404',
        images: [
          {
            url: 'http://h/b.jpg',
            status: 'failed',
            error: 'HTTP 404',
            code: 'E_HTTP_STATUS',
            attempts: 1,
          },
          { url: 'http://h/c.jpg', status: 'skipped' },
        ],
      },
      {
        store_id: 'S3',
        status: 'ongoing',
        images: [
          { url: 'http://h/d.jpg', status: 'skipped' },
          { url: 'http://h/e.jpg', status: 'pending' },
        ],
      },
    ],
  };

  it('accepts a document with done, failed, skipped and pending images', () => {
    expect(validateResults(document)).toBe(true);
  });

  it('accepts fields it does not know, for later versions', () => {
    expect(validateResults({ ...document, timings: { total_ms: 5 } })).toBe(true);
  });

  const withImage = (image: object): object => ({
    ...document,
    stores: [{ store_id: 'S1', status: 'completed', images: [image] }],
  });
  const noPerimeter: Record<string, unknown> = { ...done };
  delete noPerimeter.perimeter;
  it.each([
    ['a done image without perimeter', withImage(noPerimeter)],
    ['a done image with a fractional width', withImage({ ...done, width: 1.5 })],
    ['a failed image without code', withImage({ url: 'http://h/a', status: 'failed', error: 'x' })],
    ['an image of unknown status', withImage({ url: 'http://h/a', status: 'lost' })],
    [
      'a store of unknown status',
      { ...document, stores: [{ store_id: 'S', status: 'x', images: [] }] },
    ],
    ['a job still "running"', { ...document, status: 'running' }],
    ['a short digest', { ...document, manifest_digest: 'abc' }],
    ['another schema_version', { ...document, schema_version: 2 }],
    ['a file of another tool', { ...document, tool: 'other' }],
    ['a date that is no date', { ...document, updated_at: 'yesterday' }],
  ])('refuses %s', (_name, data) => {
    expect(validateResults(data)).toBe(false);
  });
});
