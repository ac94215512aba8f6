/**
 * The Retail Pulse job payload (`{"count": n, "visits": [...]}`) read as a
 * stream: each visit is parsed and checked alone as it arrives, and only
 * its store and URLs are kept. The problems and their places are those a
 * whole-document check gives: `visits[3].image_url[1]: not an http(s) URL`.
 * A key given twice in one object is refused, as JSON.parse would keep one
 * of the two without a word.
 */
import { ManifestError } from '../utils/errors.js';
import { JobBuilder } from './job-builder.js';
import { JsonStream, JsonStreamError, type JsonFrame } from './json-stream.js';
import {
  checkVisit,
  duplicateKey,
  placeOf,
  ProblemList,
  topLevelProblems,
  type VisitsSeen,
} from './manifest-rules.js';
import type { ManifestParser } from './manifest-parser.js';
import type { JobInput } from '../types.js';

export class RetailPulseParser implements ManifestParser {
  readonly #source: string;
  readonly #builder = new JobBuilder();
  readonly #problems = new ProblemList();
  readonly #duplicates = new ProblemList();
  readonly #json: JsonStream;
  #root: { readonly kind: 'object' } | { readonly kind: 'other'; value?: unknown } = {
    kind: 'object',
  };
  #count: unknown = undefined;
  #visits: VisitsSeen = { kind: 'missing' };
  #visitItems = 0;

  constructor(source: string) {
    this.#source = source;
    this.#json = new JsonStream(
      (path, first) => this.#interest(path, first),
      (text, path) => {
        this.#value(text, path);
      },
      (path, key) => {
        this.#duplicates.add(duplicateKey(path, key));
      },
    );
  }

  push(chunk: string): void {
    this.#syntax(() => {
      this.#json.push(chunk);
    });
  }

  end(): JobInput {
    this.#check();
    return this.#builder.finish(this.#source);
  }

  /** As `end`, awaiting `turn()` now and then; with the canonical manifest text in pieces (see JobBuilder). */
  endInSlices(
    turn: () => Promise<void> | undefined,
  ): Promise<{ readonly input: JobInput; readonly canonical: readonly string[] }> {
    this.#check();
    return this.#builder.finishInSlices(this.#source, turn);
  }

  #check(): void {
    this.#syntax(() => {
      this.#json.end();
    });
    // As JSON.parse would have kept one of the two, the rules were checked on a guess.
    if (this.#duplicates.size > 0) {
      throw new ManifestError(this.#source, this.#duplicates.lines());
    }
    const { before, after } = topLevelProblems(
      this.#root.kind === 'other'
        ? { root: 'other', value: this.#root.value }
        : { root: 'object', count: this.#count, visits: this.#visits },
    );
    if (before.length + this.#problems.size + after.length > 0) {
      throw new ManifestError(this.#source, this.#problems.lines(before, after));
    }
  }

  /** Which values are parsed: the root unless an object, `count`, `visits` unless an array, each visit. */
  #interest(path: readonly JsonFrame[], first: string): 'capture' | 'scan' {
    if (path.length === 0) {
      if (first === '{') return 'scan';
      this.#root = { kind: 'other' };
      return 'capture';
    }
    const key = path[0]?.key;
    if (path.length === 1) {
      if (key === 'count') return 'capture';
      if (key !== 'visits') return 'scan';
      if (first !== '[') return 'capture';
      this.#visits = { kind: 'array', length: 0 };
      return 'scan';
    }
    return key === 'visits' && path[1]?.close === ']' ? 'capture' : 'scan';
  }

  #value(text: string, path: readonly JsonFrame[]): void {
    const value = JSON.parse(text) as unknown;
    if (path.length === 0) {
      this.#root = { kind: 'other', value };
    } else if (path.length === 1) {
      if (path[0]?.key === 'count') this.#count = value;
      else this.#visits = { kind: 'other', value };
    } else {
      this.#visit(value, this.#visitItems++);
      this.#visits = { kind: 'array', length: this.#visitItems };
    }
  }

  #visit(value: unknown, index: number): void {
    const checked = checkVisit(value);
    if ('problems' in checked) {
      for (const [path, message] of checked.problems) {
        this.#problems.add(`${placeOf(['visits', index, ...path])}: ${message}`);
      }
    } else if (this.#problems.size === 0) {
      // A manifest with problems is refused: its stores need not be built.
      this.#builder.add(checked);
    }
  }

  #syntax(step: () => void): void {
    try {
      step();
    } catch (error) {
      if (!(error instanceof JsonStreamError)) throw error;
      const { found } = error;
      const line =
        found === 'empty'
          ? 'empty, expected a JSON object'
          : `not valid JSON: ${found.reason} at line ${found.line} column ${found.column}`;
      throw new ManifestError(this.#source, [line], { cause: error });
    }
  }
}
