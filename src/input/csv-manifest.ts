/**
 * A manifest in CSV, as a data team exports one: the header
 * `store_id,image_url[,visit_time]` (in any order; other columns are
 * ignored) and one image per row, a store's rows in order. Rows in a row of
 * one store and one visit time make one visit, so the job is the same as in
 * the Retail Pulse form. Every bad row is reported, `line 7: image_url: …`.
 */
import { ManifestError } from '../utils/errors.js';
import { JobBuilder } from './job-builder.js';
import { checkVisit, ProblemList } from './manifest-rules.js';
import type { JobInput } from '../types.js';

export const CSV_HEADER = 'store_id,image_url[,visit_time]';

/**
 * The options csv-parse reads a CSV manifest with (streamed or whole). No
 * `info` (the line of each record): it doubles the parse time; records are
 * counted instead, blank lines included, so a record's number is its line
 * unless a quoted field holds a line break.
 */
export const CSV_OPTIONS = { bom: true, relax_column_count: true } as const;

type Columns = { readonly storeId: number; readonly imageUrl: number; readonly visitTime: number };
type OpenVisit = { store_id: string; image_url: string[]; visit_time: string | undefined };

export class CsvManifest {
  readonly #source: string;
  readonly #builder = new JobBuilder();
  readonly #problems = new ProblemList();
  #columns: Columns | undefined;
  #width = 0;
  #visit: OpenVisit | undefined;
  #line = 0;
  /** A problem that leaves nothing more to read (the header). */
  #fatal: string | undefined;

  constructor(source: string) {
    this.#source = source;
  }

  /** One record as csv-parse gives it. Never throws: `end` reports (a stream's handler calls it). */
  add(record: readonly string[]): void {
    const line = ++this.#line;
    if (this.#fatal !== undefined || (record.length === 1 && record[0] === '')) return;
    if (this.#columns === undefined) {
      this.#columns = this.#header(record, line);
      this.#width = record.length;
      return;
    }
    if (record.length !== this.#width) {
      this.#problems.add(`line ${line}: expected ${this.#width} fields, got ${record.length}`);
      return;
    }
    const { storeId, imageUrl, visitTime } = this.#columns;
    const store_id = record[storeId] as string;
    const url = record[imageUrl] as string;
    const time = visitTime === -1 ? '' : (record[visitTime] as string);
    const visit_time = time === '' ? undefined : time;
    const checked = checkVisit({ store_id, image_url: [url], visit_time });
    if ('problems' in checked) {
      // The path inside the visit, of a row: `image_url`, not `image_url[0]`.
      for (const [path, message] of checked.problems) {
        this.#problems.add(`line ${line}: ${String(path[0] ?? 'row')}: ${message}`);
      }
      return;
    }
    if (this.#problems.size > 0) return;
    const open = this.#visit;
    if (open !== undefined && open.store_id === store_id && open.visit_time === visit_time) {
      open.image_url.push(url);
      return;
    }
    this.#closeVisit();
    this.#visit = { store_id, image_url: [url], visit_time };
  }

  end(): JobInput {
    if (this.#fatal !== undefined) throw new ManifestError(this.#source, [this.#fatal]);
    if (this.#columns === undefined) {
      throw new ManifestError(this.#source, [`empty, expected the header ${CSV_HEADER}`]);
    }
    if (this.#problems.size > 0) throw new ManifestError(this.#source, this.#problems.lines());
    this.#closeVisit();
    return this.#builder.finish(this.#source);
  }

  #closeVisit(): void {
    const visit = this.#visit;
    if (visit === undefined) return;
    this.#builder.add(
      visit.visit_time === undefined
        ? { store_id: visit.store_id, image_url: visit.image_url }
        : { store_id: visit.store_id, image_url: visit.image_url, visit_time: visit.visit_time },
    );
    this.#visit = undefined;
  }

  #header(record: readonly string[], line: number): Columns | undefined {
    const names = record.map((name) => name.trim());
    const column = (name: string): number =>
      names.indexOf(name) === names.lastIndexOf(name) ? names.indexOf(name) : -2;
    const columns = {
      storeId: column('store_id'),
      imageUrl: column('image_url'),
      visitTime: column('visit_time'),
    };
    if (columns.storeId < 0 || columns.imageUrl < 0 || columns.visitTime === -2) {
      const got = JSON.stringify(names.join(','));
      this.#fatal = `line ${line}: expected the header ${CSV_HEADER}, got ${got}`;
      return undefined;
    }
    return columns;
  }
}
