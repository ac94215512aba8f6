/**
 * Property tests of the manifest reader against a plain reference validator
 * written without zod: whatever the input, parseManifest either returns stores
 * that match the visits exactly, or throws a ManifestError whose every line
 * names a place — and it accepts exactly what the reference accepts.
 */
import { readFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ManifestError } from '../src/utils/errors.js';
import { findJsonSyntaxError } from '../src/input/json-syntax.js';
import { parseManifest } from '../src/input/manifest.js';
import type { JobInput } from '../src/types.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Key = string | number;

const PLACE =
  /^(?:\(root\)|count|visits(?:\[\d+\](?:\.(?:store_id|image_url|visit_time)(?:\[\d+\])?)?)?): \S/;
const MORE = /^… and \d+ more problems?$/;
const SYNTAX = /^(?:not valid JSON: .+ at line \d+ column \d+|empty, expected a JSON object)$/;

const schema = JSON.parse(await readFile('schema/manifest.schema.json', 'utf8')) as object;
const schemaAccepts = new Ajv2020({ strict: true }).compile(schema);

// ------------------------------------------------------------ arbitraries

/** Control characters (C0, DEL, C1): a store id holding one is refused. */
// eslint-disable-next-line no-control-regex -- matching controls is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const storeId = fc.oneof(
  fc.constantFrom('S00339218', 'RP00001', 'S1'),
  fc
    .string({ unit: 'binary', minLength: 1, maxLength: 6 })
    .filter((id) => id.trim() !== '' && !CONTROL.test(id)),
);
const imageUrl = fc.oneof(
  fc.webUrl({ validSchemes: ['http', 'https'], withQueryParameters: true, withFragments: true }),
  fc.constantFrom('https://cdn.example.com/a.jpg', 'HTTP://EXAMPLE.COM/B.PNG', 'http://[::1]:8/c'),
);
const visit = fc.record(
  {
    store_id: storeId,
    image_url: fc.array(imageUrl, { minLength: 1, maxLength: 4 }),
    visit_time: fc.string({ maxLength: 24 }),
  },
  { requiredKeys: ['store_id', 'image_url'] },
);
const validManifest = fc
  .array(visit, { maxLength: 6 })
  .map((visits): Json => ({ count: visits.length, visits }));

const junk: fc.Arbitrary<Json> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom<Json>(
    ...[1e308, -0, -1, 0.5, 2 ** 53, 1, 3, '', ' ', '\u00a0', '\ud800', '\u0000'],
    ...['ftp://h/a', 'https://u:p@h/a', 'https://h/a b', 'https:h', '//h/a', 'https://'],
    ...[[], {}, [''], { store_id: 'S', image_url: ['https://h/a'] }],
  ),
);
type Mutation = {
  readonly at: number;
  readonly kind: 'set' | 'delete' | 'add-key';
  readonly key: string;
  readonly value: Json;
};
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom('set', 'delete', 'add-key'),
  key: fc.constantFrom('count', 'visits', 'store_id', 'image_url', 'visit_time', '__proto__', 'x'),
  value: junk,
});
const mutatedManifest = fc
  .tuple(validManifest, fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([manifest, mutations]) => mutations.reduce(mutate, manifest));

// ------------------------------------------------------------ properties

describe('parseManifest under fuzzing', () => {
  it('accepts every valid manifest and groups its visits exactly', () => {
    fc.assert(
      fc.property(validManifest, (manifest) => {
        const job = parseManifest(JSON.stringify(manifest), 'm.json');
        expectStoresMatch(job, manifest);
        const reformatted = JSON.stringify(reverseKeys(manifest), null, 2);
        expect(parseManifest(reformatted, 'm.json').digest).toBe(job.digest);
      }),
      { numRuns: 500 },
    );
  });

  it('on mutated manifests, accepts exactly what the reference accepts, and says where', () => {
    fc.assert(fc.property(mutatedManifest, checkAgainstReference), { numRuns: 1500 });
  });

  it('on any JSON value, accepts exactly what the reference accepts, and says where', () => {
    fc.assert(fc.property(junk, checkAgainstReference), { numRuns: 500 });
  });

  it('on broken JSON text, names line and column, and agrees with JSON.parse on validity', () => {
    const edits = fc.array(
      fc.record({
        at: fc.nat(),
        remove: fc.nat({ max: 3 }),
        insert: fc.oneof(
          fc.constantFrom(
            '{',
            '}',
            '[',
            ']',
            ',',
            ':',
            '"',
            '\\',
            ' ',
            '\n',
            '0',
            '-',
            'e',
            't',
            'n',
          ),
          fc.string({ unit: 'binary', maxLength: 2 }),
        ),
      }),
      { minLength: 1, maxLength: 3 },
    );
    const brokenText = fc
      .tuple(validManifest, edits)
      .map(([manifest, list]) => list.reduce(editText, JSON.stringify(manifest, null, 1)));
    fc.assert(fc.property(brokenText, checkBrokenText), { numRuns: 1500 });
  });
});

// ------------------------------------------------------------ oracles

function checkAgainstReference(value: Json): void {
  const text = JSON.stringify(value);
  const accepted = referenceAccepts(value);
  let job: JobInput | undefined;
  try {
    job = parseManifest(text, 'm.json');
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    expect(accepted, error.message).toBe(false);
    expect(error.problems.length).toBeGreaterThan(0);
    for (const [i, line] of error.problems.entries()) {
      expect(line).toMatch(i === 20 ? MORE : PLACE);
    }
  }
  if (job !== undefined) {
    expect(accepted).toBe(true);
    expectStoresMatch(job, value);
  }
  // The JSON Schema may be looser than imgjob (it cannot compare count), never stricter.
  if (accepted) expect(schemaAccepts(value)).toBe(true);
}

function checkBrokenText(text: string): void {
  const bare = text.replace(/^\uFEFF/, '');
  let parses = true;
  try {
    JSON.parse(bare);
  } catch {
    parses = false;
  }
  expect(findJsonSyntaxError(bare) === undefined).toBe(parses);
  try {
    parseManifest(text, 'm.json');
  } catch (error) {
    if (!(error instanceof ManifestError)) throw error;
    if (!parses) expect(error.problems).toEqual([expect.stringMatching(SYNTAX)]);
  }
}

/** The manifest rules (count = visits, non-empty store ids, absolute http(s) URLs), written plainly. */
function referenceAccepts(value: Json): boolean {
  if (!isObject(value)) return false;
  const { count, visits } = value;
  return (
    typeof count === 'number' &&
    Number.isSafeInteger(count) &&
    count >= 0 &&
    Array.isArray(visits) &&
    visits.length === count &&
    visits.every(
      (item) =>
        isObject(item) &&
        typeof item.store_id === 'string' &&
        item.store_id.trim() !== '' &&
        !CONTROL.test(item.store_id) &&
        Array.isArray(item.image_url) &&
        item.image_url.length > 0 &&
        item.image_url.every(isImageUrl) &&
        (!Object.hasOwn(item, 'visit_time') || typeof item.visit_time === 'string'),
    )
  );
}

function isImageUrl(value: Json): boolean {
  if (typeof value !== 'string' || !/^https?:\/\/\S+$/i.test(value) || !URL.canParse(value)) {
    return false;
  }
  const url = new URL(value);
  return url.username === '' && url.password === '';
}

function expectStoresMatch(job: JobInput, value: Json): void {
  const visits = (value as { visits: { store_id: string; image_url: string[] }[] }).visits;
  const ids = [...new Set(visits.map((v) => v.store_id))];
  const expected = ids.map((id, index) => ({
    storeId: id,
    index,
    urls: visits.flatMap((v) => (v.store_id === id ? v.image_url : [])),
  }));
  expect(
    job.stores.map(({ storeId, index, urls }) => ({ storeId, index, urls: [...urls] })),
  ).toEqual(expected);
  expect(job.imageCount).toBe(visits.flatMap((v) => v.image_url).length);
}

// ------------------------------------------------------------ helpers

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pathsOf(value: Json, path: Key[] = []): Key[][] {
  const children: [Key, Json][] = Array.isArray(value)
    ? value.map((item, i) => [i, item])
    : isObject(value)
      ? Object.entries(value)
      : [];
  return [path, ...children.flatMap(([key, child]) => pathsOf(child, [...path, key]))];
}

function mutate(root: Json, { at, kind, key, value }: Mutation): Json {
  const paths = pathsOf(root);
  const path = paths[at % paths.length] ?? [];
  if (path.length === 0) return kind === 'set' ? value : root;
  const copy = structuredClone(root);
  const parent = path
    .slice(0, -1)
    .reduce<Json>((node, k) => (node as Record<Key, Json>)[k] ?? null, copy);
  const last = path[path.length - 1] ?? 0;
  if (Array.isArray(parent) && typeof last === 'number') {
    if (kind === 'delete') parent.splice(last, 1);
    else if (kind === 'set') parent[last] = value;
    else parent.splice(last, 0, value);
  } else if (isObject(parent)) {
    if (kind === 'delete') Reflect.deleteProperty(parent, last);
    else put(parent, kind === 'set' ? last : key, value);
  }
  return copy;
}

/** An own property even for `__proto__`, as JSON.parse would make it. */
function put(target: object, key: Key, value: Json): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function editText(
  text: string,
  { at, remove, insert }: { at: number; remove: number; insert: string },
): string {
  const i = at % (text.length + 1);
  return text.slice(0, i) + insert + text.slice(i + remove);
}

function reverseKeys(value: Json): Json {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([k, v]) => [k, reverseKeys(v)]),
  );
}
