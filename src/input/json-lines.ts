/**
 * A manifest in JSON Lines: one visit per line, as the Retail Pulse visit
 * (`{"store_id", "image_url": [...], "visit_time"}`). Blank lines are
 * skipped; every bad line is reported, `line 3: image_url[1]: …`.
 */
import { ManifestError } from '../utils/errors.js';
import { JobBuilder } from './job-builder.js';
import { findDuplicateKeys, findJsonSyntaxError } from './json-syntax.js';
import { checkVisit, duplicateKey, placeOf, ProblemList } from './manifest-rules.js';
import type { ManifestParser } from './manifest-parser.js';
import type { JobInput } from '../types.js';

export class JsonLinesParser implements ManifestParser {
  readonly #source: string;
  readonly #builder = new JobBuilder();
  readonly #problems = new ProblemList();
  /** The start of a line whose end has not come yet. */
  #rest = '';
  #line = 0;

  constructor(source: string) {
    this.#source = source;
  }

  push(chunk: string): void {
    const text = this.#rest + chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      this.#takeLine(text.slice(start, end));
      start = end + 1;
    }
    this.#rest = text.slice(start);
  }

  end(): JobInput {
    if (this.#rest !== '') this.#takeLine(this.#rest);
    this.#rest = '';
    if (this.#problems.size > 0) throw new ManifestError(this.#source, this.#problems.lines());
    return this.#builder.finish(this.#source);
  }

  #takeLine(raw: string): void {
    const line = ++this.#line;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (/^[ \t]*$/.test(text)) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      const found = findJsonSyntaxError(text);
      const where = found === undefined ? '' : `${found.reason} at column ${found.column}`;
      this.#problems.add(`line ${line}: not valid JSON${where === '' ? '' : `: ${where}`}`);
      return;
    }
    const duplicates = findDuplicateKeys(text);
    if (duplicates.length > 0) {
      for (const { path, key } of duplicates) {
        const problem = duplicateKey(path, key);
        this.#problems.add(`line ${line}: ${problem.replace(/^\(root\): /, '')}`);
      }
      return;
    }
    const checked = checkVisit(value);
    if ('problems' in checked) {
      for (const [path, message] of checked.problems) {
        const place = path.length === 0 ? '' : `${placeOf(path)}: `;
        this.#problems.add(`line ${line}: ${place}${message}`);
      }
    } else if (this.#problems.size === 0) {
      this.#builder.add(checked);
    }
  }
}
