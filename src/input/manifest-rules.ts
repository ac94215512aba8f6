/**
 * The rules a manifest obeys, in every form it comes in, and the words of a
 * broken one: `place: what`, as a user would write the place in code. A good
 * visit is checked without zod (the common case, fast); zod explains a bad
 * one, and builds the JSON Schema.
 */
import { createRequire } from 'node:module';

import type { z as Zod } from 'zod';

import type { Visit } from '../types.js';
import { quotedOutsideText } from '../shared/outside-text.js';
import { plural } from '../utils/plural.js';
import { canParseUrl } from '../utils/can-parse-url.js';

/** The rules of one visit, built with the zod it is given. */
export function buildVisitSchema(z: typeof Zod) {
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

  return z
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
}

/**
 * The manifest rules (the Retail Pulse document), built with the zod it is
 * given, for JSON Schema. JSON Schema can say everything here except that
 * `count` equals the number of visits, and the URL rules beyond the scheme.
 * Reading a manifest checks the document's top level by hand
 * (`topLevelProblems`) and each visit with `buildVisitSchema`: one stream, no
 * whole document in memory.
 */
export function buildManifestSchema(z: typeof Zod) {
  return z
    .object(
      {
        count: z
          .int({ error: expected('a whole number ≥ 0') })
          .min(0, { error: expected('a whole number ≥ 0') })
          .meta({ description: 'The number of visits; must equal `visits.length`.' }),
        visits: z.array(buildVisitSchema(z), { error: expected('an array') }).meta({
          description: 'The visits; all visits of one store_id are merged in this order.',
        }),
      },
      { error: expected('an object') },
    )
    .superRefine(
      ({ count, visits }, context) => {
        const message = countMismatch(count, visits.length);
        if (message === undefined) return;
        context.addIssue({ code: 'custom', path: ['count'], input: count, message });
      },
      { when: ({ value }) => hasComparableCount(value) },
    )
    .meta({ title: 'imgjob manifest', description: 'The job payload of the Retail Pulse API.' });
}

function hasComparableCount(value: unknown): boolean {
  if (!isRecord(value)) return false;
  return (
    Number.isSafeInteger(value.count) && (value.count as number) >= 0 && Array.isArray(value.visits)
  );
}

/** What the top level of a Retail Pulse document held. */
export type TopLevel =
  | { readonly root: 'object'; readonly count?: unknown; readonly visits: VisitsSeen }
  | { readonly root: 'other'; readonly value: unknown };

/** `visits`: missing, an array of so many items, or another value. */
export type VisitsSeen =
  | { readonly kind: 'missing' }
  | { readonly kind: 'array'; readonly length: number }
  | { readonly kind: 'other'; readonly value: unknown };

/**
 * The problems of a document's top level, in the order zod would list them
 * around the visits' own: those of `count` and `visits` first, a count that
 * does not match last.
 */
export function topLevelProblems(top: TopLevel): { before: string[]; after: string[] } {
  if (top.root === 'other') {
    return { before: [`(root): ${expected('an object')({ input: top.value })}`], after: [] };
  }
  const before: string[] = [];
  const { count, visits } = top;
  const countOk = Number.isSafeInteger(count) && (count as number) >= 0;
  if (!countOk) before.push(`count: ${expected('a whole number ≥ 0')({ input: count })}`);
  if (visits.kind !== 'array') {
    const input = visits.kind === 'other' ? visits.value : undefined;
    before.push(`visits: ${expected('an array')({ input })}`);
  }
  const mismatch =
    countOk && visits.kind === 'array' ? countMismatch(count as number, visits.length) : undefined;
  return { before, after: mismatch === undefined ? [] : [`count: ${mismatch}`] };
}

function countMismatch(count: number, visits: number): string | undefined {
  if (count === visits) return undefined;
  return `${count} does not match the ${visits} ${visits === 1 ? 'visit' : 'visits'}`;
}

/**
 * A visit that passes every rule of `buildVisitSchema`, checked without zod
 * and shaped as zod would hand it back; undefined when anything is off.
 * A rule added to the schema must be added here too.
 */
export function quickVisit(visit: unknown): Visit | undefined {
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
  return visit_time === undefined
    ? { store_id, image_url: urls }
    : { store_id, image_url: urls, visit_time };
}

/**
 * Checks one visit: the visit, or the problems zod finds in it, each as a
 * path inside the visit (`['image_url', 1]`) and what is wrong there.
 */
export function checkVisit(
  visit: unknown,
): Visit | { readonly problems: readonly [PropertyKey[], string][] } {
  const quick = quickVisit(visit);
  if (quick !== undefined) return quick;
  visitSchema ??= buildVisitSchema(loadZod());
  const result = visitSchema.safeParse(visit);
  // The quick check is stricter than zod nowhere; should they ever part, zod's verdict stands.
  if (result.success) return result.data;
  return { problems: result.error.issues.map((issue) => [issue.path, issue.message]) };
}

let visitSchema: ReturnType<typeof buildVisitSchema> | undefined;

/** zod, loaded on first need (its CommonJS build: parsing stays synchronous, ~100 ms saved when all is well). */
function loadZod(): typeof Zod {
  return (createRequire(import.meta.url)('zod') as { z: typeof Zod }).z;
}

/**
 * Problem lines as a user sees them: the first `max`, then how many more.
 * Only those are kept, so a million bad visits cost no memory.
 */
export class ProblemList {
  readonly #lines: string[] = [];
  #count = 0;

  constructor(readonly max = 20) {}

  add(line: string): void {
    if (this.#lines.length < this.max + 1) this.#lines.push(line);
    this.#count++;
  }

  get size(): number {
    return this.#count;
  }

  /** Every line in order with `before` and `after` around the listed ones, cut at `max`. */
  lines(before: readonly string[] = [], after: readonly string[] = []): string[] {
    const all = [...before, ...this.#lines, ...after];
    const total = before.length + this.#count + after.length;
    if (total <= this.max) return all;
    const rest = total - this.max;
    return [...all.slice(0, this.max), `… and ${plural(rest, 'more problem')}`];
  }
}

const QUICK_URL = /^[hH][tT][tT][pP][sS]?:\/\/\S+$/;
// eslint-disable-next-line no-control-regex -- the store-id rule of the schema
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function urlProblem(value: string): string | undefined {
  // The regex above already explained a wrong scheme; only report what it cannot see.
  if (!/^https?:\/\/\S+$/i.test(value)) return undefined;
  // canParse builds no URL object: a 100k-image manifest spends most of its time here.
  if (!canParseUrl(value)) return notHttpUrl(value);
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

/** A string as JSON shows it, with the controls JSON leaves raw (DEL, C1, bidi) escaped too. */
function escaped(value: unknown): string {
  return quotedOutsideText(String(value));
}

/** `visits[3].image_url[1]`, the way a user would write it in code (`x["a b"]` for odd keys). */
export function placeOf(path: readonly PropertyKey[]): string {
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

/** The line of a key given twice in one object. */
export function duplicateKey(path: readonly PropertyKey[], key: string): string {
  return `${placeOf(path)}: duplicate key ${escaped(key)}`;
}

function expected(what: string): (issue: { readonly input?: unknown }) => string {
  return (issue) => `expected ${what}, ${got(issue.input)}`;
}

/** What came instead, short enough for one line. */
function got(value: unknown): string {
  if (value === undefined) return 'but it is missing';
  if (value === null) return 'got null';
  if (typeof value === 'string') {
    return `got ${escaped(value.length > 80 ? `${value.slice(0, 77)}…` : value)}`;
  }
  if (Array.isArray(value)) return value.length === 0 ? 'got []' : 'got an array';
  if (typeof value === 'object') return Object.keys(value).length > 0 ? 'got an object' : 'got {}';
  if (typeof value === 'number' || typeof value === 'boolean') return `got ${String(value)}`;
  return `got a ${typeof value}`;
}
