/**
 * Reads and validates a manifest (the Retail Pulse job payload) and groups
 * its visits into store tasks. Every problem is reported at once, one
 * `place: what` line each, so a user fixes a broken file in one pass.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { buffer as readBuffer } from 'node:stream/consumers';

import type { z as Zod } from 'zod';

import {
  describeError,
  describeFileError,
  InputError,
  limitProblems,
  ManifestError,
} from '../utils/errors.js';
import { findDuplicateKeys, findJsonSyntaxError } from './json-syntax.js';
import { decodeUtf8 } from './utf8.js';
import type { ImageTask, JobInput, Manifest, StoreTask, Visit } from '../types.js';

/**
 * The manifest rules, built with the zod it is given. JSON Schema can say
 * everything here except that `count` equals the number of visits, and the
 * URL rules beyond the scheme. `manifest-schema.ts` holds them built (for
 * JSON Schema); `parseManifest` builds them only for a manifest that fails
 * its quick check, so a good manifest never loads zod (~100 ms of start-up).
 */
export function buildManifestSchema(z: typeof Zod) {
  const imageUrlSchema = z
    .string({ error: expected('an http(s) URL string') })
    // Spelled without flags so that JSON Schema, which has none, can carry it.
    .regex(/^[hH][tT][tT][pP][sS]?:\/\/\S+$/, { error: (issue) => notHttpUrl(issue.input) })
    .check((payload) => {
      const message = urlProblem(payload.value);
      if (message === undefined) return;
      payload.issues.push({ code: 'custom', input: payload.value, message });
    })
    .meta({ description: 'An absolute http: or https: URL without a user name or password.' });

  const visitSchema = z
    .object(
      {
        store_id: z
          .string({ error: expected('a non-empty string') })
          .regex(/\S/, { error: expected('a non-empty string') })
          // A NUL or another control character in an id (C0, DEL, C1) breaks
          // terminals, CSV joins and C-string databases; no real id holds one.
          // A blank id (tabs, newlines) is left to the rule above, so it gets
          // one message. Escapes and no flags: JSON Schema can carry it.
          // eslint-disable-next-line no-control-regex -- matching controls is the point
          .regex(/^(?:\s*|[^\u0000-\u001f\u007f-\u009f]*)$/, {
            error: (issue) => `must not contain control characters, got ${escaped(issue.input)}`,
          })
          .meta({
            description: 'Store the images belong to; visits of one store form one pipeline.',
          }),
        image_url: z
          .array(imageUrlSchema, { error: expected('a non-empty array of http(s) URLs') })
          .min(1, { error: expected('a non-empty array of http(s) URLs') })
          .meta({ description: 'Images of the visit, processed in this order.' }),
        visit_time: z
          .string({ error: expected('a string') })
          .optional()
          .meta({ description: 'When the visit took place; kept in the results as given.' }),
      },
      { error: expected('an object') },
    )
    .meta({ description: 'One visit of a store. Unknown fields are allowed and ignored.' });

  return (
    z
      .object(
        {
          count: z
            .int({ error: expected('a whole number ≥ 0') })
            .min(0, { error: expected('a whole number ≥ 0') })
            .meta({ description: 'The number of visits; must equal `visits.length`.' }),
          visits: z.array(visitSchema, { error: expected('an array') }).meta({
            description: 'The visits; all visits of one store_id are merged in this order.',
          }),
        },
        { error: expected('an object') },
      )
      // Checked even when a visit is broken, so a user sees this problem too.
      .superRefine(
        ({ count, visits }, context) => {
          if (count === visits.length) return;
          const noun = visits.length === 1 ? 'visit' : 'visits';
          const message = `${count} does not match the ${visits.length} ${noun}`;
          context.addIssue({ code: 'custom', path: ['count'], input: count, message });
        },
        { when: ({ value }) => hasComparableCount(value) },
      )
      .meta({ title: 'imgjob manifest', description: 'The job payload of the Retail Pulse API.' })
  );
}

/**
 * Validates a manifest and groups it into stores.
 * @param content The manifest's bytes (which must be UTF-8), or its text.
 * @param source The file path, or `-` for stdin; names the manifest in messages.
 * @throws {ManifestError} listing every problem, one `place: what` line each.
 */
export function parseManifest(content: string | Uint8Array, source: string): JobInput {
  const text = typeof content === 'string' ? content : decodeManifest(content, source);
  const data = decodeJson(text, source);
  const manifest = quickManifest(data) ?? checkedManifest(data, source);
  const stores = groupStores(manifest.visits);
  const imageCount = stores.reduce((sum, store) => sum + store.images.length, 0);
  const digest = createHash('sha256').update(canonicalJson(manifest)).digest('hex');
  return { source, manifest, stores, digest, imageCount };
}

/**
 * Reads a manifest file, or stdin when `path` is `-`.
 * @throws {InputError} `E_MANIFEST` when it cannot be read, {ManifestError} when it is invalid.
 */
export async function readManifest(
  path: string,
  stdin: NodeJS.ReadableStream = process.stdin,
): Promise<JobInput> {
  let bytes: Uint8Array;
  try {
    bytes = path === '-' ? await readBuffer(stdin) : await readFile(path);
  } catch (error) {
    const message = `cannot read manifest ${path === '-' ? 'from stdin' : path}: ${describeFileError(error)}`;
    throw new InputError('E_MANIFEST', message, { cause: error });
  }
  return parseManifest(bytes, path);
}

/**
 * The manifest when it passes every rule of `buildManifestSchema` (the
 * common case, checked without zod), shaped as zod would hand it back;
 * undefined when anything is off, and zod then says what.
 * A rule added to the schema must be added here too.
 */
function quickManifest(data: unknown): Manifest | undefined {
  if (!isRecord(data)) return undefined;
  const { count, visits } = data;
  if (!Number.isSafeInteger(count) || !Array.isArray(visits) || count !== visits.length) {
    return undefined;
  }
  const checked: Visit[] = [];
  for (const visit of visits as unknown[]) {
    if (!isRecord(visit)) return undefined;
    const { store_id, image_url, visit_time } = visit;
    if (typeof store_id !== 'string' || !/\S/.test(store_id) || CONTROL.test(store_id)) {
      return undefined;
    }
    if (visit_time !== undefined && typeof visit_time !== 'string') return undefined;
    if (!Array.isArray(image_url) || image_url.length === 0) return undefined;
    for (const url of image_url as unknown[]) {
      if (typeof url !== 'string' || !QUICK_URL.test(url) || urlProblem(url) !== undefined) {
        return undefined;
      }
    }
    const urls = image_url as string[];
    checked.push(
      visit_time === undefined
        ? { store_id, image_url: urls }
        : { store_id, image_url: urls, visit_time },
    );
  }
  return { count: count, visits: checked };
}

const QUICK_URL = /^[hH][tT][tT][pP][sS]?:\/\/\S+$/;
// eslint-disable-next-line no-control-regex -- the store-id rule of the schema
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** zod's verdict: the manifest, or a ManifestError with every problem. */
function checkedManifest(data: unknown, source: string): Manifest {
  schema ??= buildManifestSchema(loadZod());
  const result = schema.safeParse(data);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${placeOf(issue.path)}: ${issue.message}`);
    throw new ManifestError(source, limitProblems(problems));
  }
  return result.data;
}

let schema: ReturnType<typeof buildManifestSchema> | undefined;

/** zod, loaded on first need (its CommonJS build: `parseManifest` stays synchronous). */
function loadZod(): typeof Zod {
  return (createRequire(import.meta.url)('zod') as { z: typeof Zod }).z;
}

/** The text of UTF-8 bytes; a file in another encoding is refused, not read as garbage. */
function decodeManifest(bytes: Uint8Array, source: string): string {
  const decoded = decodeUtf8(bytes);
  if ('text' in decoded) return decoded.text;
  const byte = bytes[decoded.invalidAt]?.toString(16).padStart(2, '0') ?? '';
  const what = byte === '' ? 'a character cut short at the end' : `byte 0x${byte}`;
  throw new ManifestError(source, [`not valid UTF-8: ${what} at byte offset ${decoded.invalidAt}`]);
}

/**
 * The parsed JSON. A key given twice in one object is refused: JSON.parse
 * would keep the last silently, and a manifest's author meant one of them.
 * Like the other problems, these lines leave naming the file to the caller.
 */
function decodeJson(raw: string, source: string): unknown {
  // Editors on Windows like to start a file with a BOM; JSON.parse refuses it.
  const text = raw.replace(/^\uFEFF/, '');
  if (/^[ \t\n\r]*$/.test(text)) {
    throw new ManifestError(source, ['empty, expected a JSON object']);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    const found = findJsonSyntaxError(text);
    const detail =
      found === undefined
        ? describeError(error)
        : `${found.reason} at line ${found.line} column ${found.column}`;
    throw new ManifestError(source, [`not valid JSON: ${detail}`], { cause: error });
  }
  const duplicates = findDuplicateKeys(text);
  if (duplicates.length > 0) {
    const problems = duplicates.map(
      ({ path, key }) => `${placeOf(path)}: duplicate key ${escaped(key)}`,
    );
    throw new ManifestError(source, limitProblems(problems));
  }
  return data;
}

function groupStores(visits: readonly Visit[]): StoreTask[] {
  type Building = { storeId: string; index: number; visitTimes: string[]; images: ImageTask[] };
  const byId = new Map<string, Building>();
  visits.forEach((visit, visitIndex) => {
    let store = byId.get(visit.store_id);
    if (store === undefined) {
      store = { storeId: visit.store_id, index: byId.size, visitTimes: [], images: [] };
      byId.set(visit.store_id, store);
    }
    if (visit.visit_time !== undefined) store.visitTimes.push(visit.visit_time);
    for (const url of visit.image_url) store.images.push({ url, visit: visitIndex });
  });
  return [...byId.values()];
}

/**
 * The validated manifest with its keys in sorted order, so that reformatting
 * the file, reordering its keys or adding ignored fields keeps the digest.
 * A field added to the schema must be added here too.
 */
function canonicalJson({ count, visits }: Manifest): string {
  const sorted = visits.map(({ image_url, store_id, visit_time }) => ({
    image_url,
    store_id,
    visit_time, // JSON.stringify leaves it out when undefined
  }));
  return JSON.stringify({ count, visits: sorted });
}

function urlProblem(value: string): string | undefined {
  // The regex above already explained a wrong scheme; only report what it cannot see.
  if (!/^https?:\/\/\S+$/i.test(value)) return undefined;
  // canParse builds no URL object: a 100k-image manifest spends most of its time here.
  if (!URL.canParse(value)) return notHttpUrl(value);
  const url = value.includes('@') ? new URL(value) : undefined;
  // Never echo the value: it holds a password.
  if (url !== undefined && (url.username !== '' || url.password !== '')) {
    return 'must not carry a user name or password';
  }
  return undefined;
}

function notHttpUrl(value: unknown): string {
  const spaced = typeof value === 'string' && /\s/.test(value);
  return `not an http(s) URL${spaced ? ' (it contains whitespace)' : ''}, ${got(value)}`;
}

/** A string as JSON shows it, with the controls JSON leaves raw (DEL, C1) escaped too. */
function escaped(value: unknown): string {
  return JSON.stringify(String(value)).replace(
    /[\u007f-\u009f]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function hasComparableCount(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { count, visits } = value as { count?: unknown; visits?: unknown };
  return Number.isSafeInteger(count) && (count as number) >= 0 && Array.isArray(visits);
}

/** `visits[3].image_url[1]`, the way a user would write it in code (`x["a b"]` for odd keys). */
function placeOf(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((key, i) => {
      if (typeof key === 'number') return `[${key}]`;
      const name = String(key);
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) return `[${escaped(name)}]`;
      return `${i === 0 ? '' : '.'}${name}`;
    })
    .join('');
}

function expected(what: string): (issue: { readonly input?: unknown }) => string {
  return (issue) => `expected ${what}, ${got(issue.input)}`;
}

/** What came instead, short enough for one line. */
function got(value: unknown): string {
  if (value === undefined) return 'but it is missing';
  if (value === null) return 'got null';
  if (typeof value === 'string') {
    return `got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}…` : value)}`;
  }
  if (Array.isArray(value)) return value.length === 0 ? 'got []' : 'got an array';
  if (typeof value === 'object') return Object.keys(value).length > 0 ? 'got an object' : 'got {}';
  if (typeof value === 'number' || typeof value === 'boolean') return `got ${String(value)}`;
  return `got a ${typeof value}`;
}
