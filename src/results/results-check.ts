/**
 * The shape of a results file, checked field by field as
 * `schema/results.schema.json` describes it, so that a hand-edited, foreign
 * or hostile file is refused with the place of its first problem
 * (`counts: missing`) instead of making a reader trip over it later. One
 * pass without allocations per image: a file of a million images is checked
 * in milliseconds.
 */
import { quotedOutsideText } from '../shared/outside-text.js';
import { IMAGE_STATUSES, STORE_STATUSES } from './job-state.js';
import { DONE_FIELDS, type DoneField } from './done-fields.js';

/** The first problem of `value` as a results document, as `place: what`; undefined when it has none. */
export function resultsProblem(value: unknown): string | undefined {
  return documentCheck(value, '');
}

/** The first problem of `value` as the store at `place` (`stores[3]`); undefined when it has none. */
export function storeProblem(value: unknown, place: string): string | undefined {
  return store(value, place);
}

/** A check of one value at `place`: the problem, or undefined. */
type Check = (value: unknown, place: string) => string | undefined;

const string: Check = (value, place) =>
  typeof value === 'string' ? undefined : problem(place, 'a string', value);

const nonEmptyString: Check = (value, place) =>
  typeof value === 'string' && value !== ''
    ? undefined
    : problem(place, 'a non-empty string', value);

const boolean: Check = (value, place) =>
  typeof value === 'boolean' ? undefined : problem(place, 'true or false', value);

function wholeNumber(min: number): Check {
  return (value, place) =>
    Number.isSafeInteger(value) && (value as number) >= min
      ? undefined
      : problem(place, `a whole number ≥ ${min}`, value);
}

const count = wholeNumber(0);

const milliseconds: Check = (value, place) =>
  typeof value === 'number' && value >= 0 ? undefined : problem(place, 'a number ≥ 0', value);

function orNull(check: Check): Check {
  return (value, place) => (value === null ? undefined : check(value, place));
}

function oneOf(values: ReadonlySet<unknown>): Check {
  const expected = `one of ${[...values].join(', ')}`;
  return (value, place) =>
    typeof value === 'string' && values.has(value) ? undefined : problem(place, expected, value);
}

function exactly(expected: string | number): Check {
  return (value, place) =>
    value === expected ? undefined : problem(place, JSON.stringify(expected), value);
}

/** An object with these fields (`optional` ones may be missing); other fields are allowed. */
function object(
  required: Readonly<Record<string, Check>>,
  optional: Readonly<Record<string, Check>> = {},
): Check {
  const requiredFields = Object.entries(required);
  const optionalFields = Object.entries(optional);
  return (value, place) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      return problem(place, 'an object', value);
    const record = value as Record<string, unknown>;
    for (const [key, check] of requiredFields) {
      const at = join(place, key);
      if (!Object.hasOwn(record, key)) return `${at}: missing`;
      const found = check(record[key], at);
      if (found !== undefined) return found;
    }
    for (const [key, check] of optionalFields) {
      if (record[key] === undefined || !Object.hasOwn(record, key)) continue;
      const found = check(record[key], join(place, key));
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

function arrayOf(item: Check): Check {
  return (value, place) => {
    if (!Array.isArray(value)) return problem(place, 'an array', value);
    for (let i = 0; i < value.length; i++) {
      const found = item(value[i], `${place}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

const imageStatus = oneOf(IMAGE_STATUSES);
const imageChecks: Readonly<Record<string, Check>> = {
  pending: object({ url: nonEmptyString }),
  skipped: object({ url: nonEmptyString }),
  done: object({
    url: nonEmptyString,
    ...Object.fromEntries(DONE_FIELDS.map((field) => [field.key, doneFieldCheck(field)])),
  }),
  failed: object({ url: nonEmptyString, error: nonEmptyString, code: string }),
};

/** What a results file may hold in a done image's field. */
function doneFieldCheck(field: DoneField): Check {
  if (field.kind === 'text') return string;
  return field.fraction === true ? milliseconds : wholeNumber(field.least ?? 0);
}

const imageHead = object({ status: imageStatus });

/** An image: its status first, which tells the fields it must have. */
const image: Check = (value, place) =>
  imageHead(value, place) ?? imageChecks[(value as { status: string }).status]?.(value, place);

/** `[epoch ms, images done or failed]`, one point of a run's timeline. */
const sample: Check = (value, place) =>
  Array.isArray(value) &&
  value.length === 2 &&
  typeof value[0] === 'number' &&
  Number.isFinite(value[0]) &&
  count(value[1], place) === undefined
    ? undefined
    : problem(place, '[epoch ms, count]', value);

const store = object(
  { store_id: nonEmptyString, status: oneOf(STORE_STATUSES), images: arrayOf(image) },
  { error: string, visit_times: arrayOf(string) },
);

const documentCheck = object(
  {
    tool: exactly('imgjob'),
    schema_version: exactly(1),
    job_id: nonEmptyString,
    status: oneOf(new Set(['ongoing', 'completed', 'failed'])),
    manifest_digest: string,
    manifest_source: string,
    created_at: string,
    updated_at: string,
    options: object({
      gpu_delay: string,
      seed: orNull((value, place) =>
        typeof value === 'number' ? undefined : problem(place, 'a number', value),
      ),
      header_only: boolean,
      max_bytes: count,
      store_master: orNull(string),
    }),
    counts: object({
      stores: count,
      images: count,
      done: count,
      failed: count,
      skipped: count,
      pending: count,
    }),
    stores: arrayOf(store),
  },
  {
    error: arrayOf(object({ store_id: string, error: string })),
    finished_at: string,
    writer: object({ pid: wholeNumber(1), host: string }),
    queue: string,
    interrupted: boolean,
    timeline: arrayOf(arrayOf(sample)),
  },
);

function join(place: string, key: string): string {
  return place === '' ? key : `${place}.${key}`;
}

function problem(place: string, expected: string, value: unknown): string {
  return `${place === '' ? '(root)' : place}: expected ${expected}, got ${shown(value)}`;
}

/** What came instead, short and on one line. */
function shown(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  const text = typeof value === 'string' ? quotedOutsideText(value) : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}
