/**
 * The one field table of a done image: every text that spells one (the
 * results file, the journal line, their byte spellers), the journal's
 * replay and JobState's columns are driven from it, as BullMQ writes its
 * `JobJson` from one field list. A new field is a row here, plus the type
 * (`ImageResult` in types.ts) and the results schema; the compiler refuses
 * a table that misses a field of the type.
 */
import type { ImageResult } from '../types.js';

export type DoneImage = Extract<ImageResult, { status: 'done' }>;

/** A done image's values past its URL and status. */
export type DoneValues = Omit<DoneImage, 'url' | 'status'>;

type FieldOf<K extends keyof DoneValues> = {
  readonly key: K;
  /** `count`: a whole number ≥ 0, spelled as digits; `text`: a short plain string (see `PLAIN_TEXT`). */
  readonly kind: DoneValues[K] extends string ? 'text' : 'count';
  /**
   * Computed from the other values, so the journal leaves it out and
   * JobState keeps no column for it; a value that differs from the rule
   * (a file edited by hand) is kept whole, not recomputed.
   */
  readonly derive?: (value: ValueByKey) => DoneValues[K];
  /** A count's least valid value in a results file. @default 0 */
  readonly least?: number;
  /** A count a results file may hold as a fraction (a time): valid, and kept whole. */
  readonly fraction?: true;
  /**
   * Bits of the count's column in JobState, when fewer than 32 hold nearly
   * every value: an image with a larger one is kept whole. @default 32
   */
  readonly bits?: 8 | 16;
};

/** A done image's value by key, wherever the image is kept. */
export type ValueByKey = <K extends keyof DoneValues>(key: K) => DoneValues[K];

export type DoneField = { [K in keyof DoneValues]: FieldOf<K> }[keyof DoneValues];

/** In the order every text spells them: the results file's key order. */
const TABLE = [
  { key: 'width', kind: 'count', bits: 16 },
  { key: 'height', kind: 'count', bits: 16 },
  { key: 'perimeter', kind: 'count', derive: (value) => 2 * (value('width') + value('height')) },
  { key: 'type', kind: 'text' },
  { key: 'bytes', kind: 'count' },
  { key: 'attempts', kind: 'count', least: 1, bits: 8 },
  { key: 'gpu_ms', kind: 'count', fraction: true, bits: 16 },
  { key: 'download_ms', kind: 'count', fraction: true, bits: 16 },
] as const satisfies readonly DoneField[];

/** The compiler's check that the table has every field of the type: else a key names what is missing. */
type Missing = Exclude<keyof DoneValues, (typeof TABLE)[number]['key']>;
type Complete<Table> = [Missing] extends [never] ? Table : { missing: Missing };

export const DONE_FIELDS: Complete<readonly DoneField[]> = TABLE;

/** The fields the journal writes and JobState keeps: the table less the derived ones. */
export const STORED_FIELDS: readonly DoneField[] = DONE_FIELDS.filter(
  (field) => field.derive === undefined,
);

/** A text that needs no JSON escaping: what image-size reports (jpg, png, svg…). */
const PLAIN_TEXT = /^[a-z0-9]{1,32}$/;

/** Most a count may be to fit a column (`Uint32Array`). */
const COLUMN_MAX = 0xffff_ffff;

export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * Whether `image` is spelled straight from its fields and fits JobState's
 * columns: every count a count that fits, every text plain, every derived
 * value the rule's, no key beyond the table's. Anything else is kept and
 * spelled whole (JSON.stringify), so the text never changes.
 */
export function isPlainDone(image: DoneImage): boolean {
  for (const field of DONE_FIELDS) {
    const value = image[field.key];
    if (field.kind === 'text') {
      if (typeof value !== 'string' || !PLAIN_TEXT.test(value)) return false;
    } else if (!isCount(value) || value > COLUMN_MAX) return false;
    if (field.derive !== undefined && field.derive((key) => image[key]) !== value) return false;
  }
  return Object.keys(image).length === DONE_FIELDS.length + 2;
}

/** A done image from its URL and its stored values in `STORED_FIELDS` order; undefined if one has the wrong kind. */
export function doneFromStored(url: string, stored: readonly unknown[]): DoneImage | undefined {
  const values: Record<string, unknown> = {};
  for (const [index, field] of STORED_FIELDS.entries()) {
    const value = stored[index];
    if (field.kind === 'text' ? typeof value !== 'string' : typeof value !== 'number') return;
    values[field.key] = value;
  }
  const image: Record<string, unknown> = { url, status: 'done' };
  for (const field of DONE_FIELDS) {
    image[field.key] =
      field.derive === undefined
        ? values[field.key]
        : field.derive((key) => values[key] as DoneValues[typeof key]);
  }
  return image as DoneImage;
}
