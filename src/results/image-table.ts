/**
 * The images of a job as columns: a status code and each stored field of
 * the done-image table (`STORED_FIELDS`) in a typed array as narrow as the
 * field allows, one slot per image; the URLs are the job input's
 * (`JobUrls`). A million images cost ~15 bytes each here, where a million
 * result objects cost ~100 and weigh on every GC. An image
 * the columns cannot hold exactly (a failed one, with its error text; a
 * done one with values past a column's range) is kept whole beside them.
 */
import type { ByteText } from './byte-text.js';
import type { JobUrls } from './job-urls.js';
import {
  DONE_FIELDS,
  isPlainDone,
  STORED_FIELDS,
  type DoneField,
  type DoneImage,
  type DoneValues,
  type ValueByKey,
} from './done-fields.js';
import type { ImageResult, ImageStatus } from '../types.js';

/** Image statuses by code: a column holds the index. */
const STATUSES: readonly ImageStatus[] = ['pending', 'done', 'failed', 'skipped'];
const STATUS_CODE = new Map(STATUSES.map((status, code) => [status, code]));
const PENDING = 0;
const DONE = 1;

/** The texts of a text field (an image's type), each kept once: a column holds its code. */
class TextCodes {
  readonly texts: string[] = [];
  /** Each text as JSON, in bytes: spelled once, copied per image. */
  readonly json: Buffer[] = [];
  readonly #codes = new Map<string, number>();

  /** The code of `text`, or undefined once a byte column holds no more. */
  codeOf(text: string): number | undefined {
    let code = this.#codes.get(text);
    if (code === undefined && this.texts.length <= 0xff) {
      code = this.texts.push(text) - 1;
      this.json.push(Buffer.from(JSON.stringify(text)));
      this.#codes.set(text, code);
    }
    return code;
  }
}

type Values = Uint32Array | Uint16Array | Uint8Array;
/** A stored field's column, and the largest value it holds. */
type Column = { readonly field: DoneField; readonly values: Values; readonly max: number };

/** A column of `length` slots as narrow as its field allows (a text's code is a byte). */
function columnOf(field: DoneField, length: number): Column {
  const bits = field.kind === 'text' ? 8 : (field.bits ?? 32);
  const values =
    bits === 8
      ? new Uint8Array(length)
      : bits === 16
        ? new Uint16Array(length)
        : new Uint32Array(length);
  return { field, values, max: 2 ** bits - 1 };
}

const fieldByKey = Object.fromEntries(DONE_FIELDS.map((field) => [field.key, field])) as {
  readonly [K in keyof DoneValues]: DoneField;
};
/** Where each stored field's column is in `#columns`. */
const columnIndex = new Map(STORED_FIELDS.map((field, index) => [field, index]));

/** A done image's text after its URL and status: each field's `,"key":` before its value. */
const DONE_LEADS = DONE_FIELDS.map((field) => Buffer.from(`,"${field.key}":`));
const IS_TEXT = DONE_FIELDS.map((field) => field.kind === 'text');
const URL_KEY = Buffer.from('{"url":');
const PENDING_END = Buffer.from(',"status":"pending"}');
const SKIPPED_END = Buffer.from(',"status":"skipped"}');
const DONE_LEAD = Buffer.from(',"status":"done"');
const END = Buffer.from('}');

export class ImageTable {
  readonly #urls: JobUrls;
  readonly #status: Uint8Array;
  readonly #columns: readonly Column[];
  /** Shared by the copies of a table: codes are only ever added. */
  readonly #texts: TextCodes;
  readonly #whole: Map<number, ImageResult>;
  /** Each field's column, in `DONE_FIELDS` order; null for a derived one. */
  readonly #sources: readonly (Values | null)[];

  private constructor(
    urls: JobUrls,
    status: Uint8Array,
    columns: readonly Column[],
    texts: TextCodes,
    whole: Map<number, ImageResult>,
  ) {
    this.#urls = urls;
    this.#status = status;
    this.#columns = columns;
    this.#texts = texts;
    this.#whole = whole;
    this.#sources = DONE_FIELDS.map((field) => this.#sourceOf(field) ?? null);
  }

  /** Every image pending. */
  static pending(urls: JobUrls): ImageTable {
    const columns = STORED_FIELDS.map((field) => columnOf(field, urls.length));
    return new ImageTable(urls, new Uint8Array(urls.length), columns, new TextCodes(), new Map());
  }

  get length(): number {
    return this.#status.length;
  }

  /**
   * A copy that later changes leave as it is, for a snapshot written in
   * the background: the columns are copied (a few MB a million images), the
   * URLs, which never change, are shared.
   */
  copy(): ImageTable {
    const columns = this.#columns.map((column) => ({ ...column, values: column.values.slice() }));
    return new ImageTable(
      this.#urls,
      this.#status.slice(),
      columns,
      this.#texts,
      new Map(this.#whole),
    );
  }

  status(image: number): ImageStatus {
    return STATUSES[this.#status[image] as number] as ImageStatus;
  }

  url(image: number): string {
    return this.#urls.url(image);
  }

  /** Bytes downloaded for a done image; 0 for any other. */
  bytes(image: number): number {
    if (this.#status[image] !== DONE) return 0;
    const whole = this.#whole.get(image);
    return whole?.status === 'done'
      ? whole.bytes
      : (this.#value(fieldByKey.bytes, image) as number);
  }

  /** Image `image` as a result object (for the few readers of whole results). */
  get(image: number): ImageResult {
    const whole = this.#whole.get(image);
    if (whole !== undefined) return whole;
    const url = this.url(image);
    const status = this.status(image);
    if (status !== 'done') return { url, status } as ImageResult;
    const result: Record<string, unknown> = { url, status };
    for (const field of DONE_FIELDS) result[field.key] = this.#value(field, image);
    return result as DoneImage;
  }

  set(image: number, result: ImageResult): void {
    this.#status[image] = STATUS_CODE.get(result.status) ?? PENDING;
    this.#whole.delete(image);
    if (!this.#urls.holds(image, result.url)) this.#whole.set(image, result);
    else if (result.status === 'failed') this.#whole.set(image, result);
    else if (result.status === 'done' && !this.#setDone(image, result))
      this.#whole.set(image, result);
  }

  /** Image `image` as the results file spells it (`JSON.stringify` of `get(image)`). */
  spell(text: ByteText, image: number): void {
    const whole = this.#whole.get(image);
    if (whole !== undefined) {
      text.text(JSON.stringify(whole));
      return;
    }
    text.raw(URL_KEY);
    text.jsonString(this.url(image));
    const code = this.#status[image];
    if (code !== DONE) {
      text.raw(code === PENDING ? PENDING_END : SKIPPED_END);
      return;
    }
    text.raw(DONE_LEAD);
    // Indexed loops over arrays made once: this runs for every image of every snapshot.
    const sources = this.#sources;
    for (let f = 0; f < sources.length; f++) {
      text.raw(DONE_LEADS[f] as Buffer);
      const source = sources[f];
      if (source === null || source === undefined)
        text.count(this.#value(DONE_FIELDS[f] as DoneField, image) as number);
      else if (IS_TEXT[f] === true) text.raw(this.#texts.json[source[image] as number] as Buffer);
      else text.count(source[image] as number);
    }
    text.raw(END);
  }

  #setDone(image: number, result: DoneImage): boolean {
    if (!isPlainDone(result)) return false;
    const codes: number[] = [];
    for (const { field, max } of this.#columns) {
      if (field.kind !== 'text') {
        if (result[field.key] > max) return false;
        continue;
      }
      const code = this.#texts.codeOf(result[field.key]);
      if (code === undefined) return false;
      codes.push(code);
    }
    let next = 0;
    for (const { field, values } of this.#columns) {
      values[image] = field.kind === 'text' ? (codes[next++] as number) : result[field.key];
    }
    return true;
  }

  /** The column of a stored field; undefined for a derived one. */
  #sourceOf(field: DoneField): Values | undefined {
    const index = columnIndex.get(field);
    return index === undefined ? undefined : this.#columns[index]?.values;
  }

  /** The image a derived value is computed for (no closure per image). */
  #current = 0;
  readonly #valueOfCurrent: ValueByKey = (key) =>
    this.#value(fieldByKey[key], this.#current) as never;

  /** Field `field` of a done image the columns hold. */
  #value(field: DoneField, image: number): DoneValues[keyof DoneValues] {
    const source = this.#sourceOf(field);
    if (source === undefined) {
      const saved = this.#current;
      this.#current = image;
      const value = field.derive?.(this.#valueOfCurrent) as number;
      this.#current = saved;
      return value;
    }
    const value = source[image] as number;
    return field.kind === 'text' ? (this.#texts.texts[value] as string) : value;
  }
}
