/**
 * A JSON text checked as it streams in, chunk by chunk, so that a manifest
 * of a million images is never one string nor one `JSON.parse`. It walks the
 * grammar of `json-syntax.ts` and stops at the same first mistake, with the
 * same words, line and column. The values its caller asks for (a visit, the
 * count) are handed over as their own small texts, for `JSON.parse` each;
 * everything else is checked and dropped as it passes. A key given twice in
 * one object is reported too.
 */
import { type JsonSyntaxError, describeChar } from './json-syntax.js';
import { ImgjobError } from '../utils/errors.js';

/** An open object or array, and where in it the scan is. */
export type JsonFrame = {
  readonly close: '}' | ']';
  /** The current key of an object. */
  key: string | undefined;
  /** Values completed so far in this array (or object). */
  index: number;
  /** The keys of an object so far: a key given twice is reported. */
  readonly keys?: Set<string>;
};

/** A key given twice in one object, and where the object is: keys and indexes from the root. */
export type JsonDuplicate = (path: readonly (string | number)[], key: string) => void;

/** What to do with a value that starts: hand over its text, or only check it. */
export type JsonInterest = (path: readonly JsonFrame[], first: string) => 'capture' | 'scan';

/** A syntax error, or a text that holds nothing but white space. */
export class JsonStreamError extends ImgjobError {
  constructor(readonly found: JsonSyntaxError | 'empty') {
    super('E_MANIFEST', found === 'empty' ? 'empty JSON text' : found.reason);
  }
}

/** Asks for more text: the token at hand may go on in the next chunk. */
const MORE = Symbol('more');
type Found = readonly [offset: number, reason: string];
type Step = number | Found | typeof MORE;
type State = 'value' | 'valueOrEnd' | 'key' | 'keyOrEnd' | 'next';

// Only the levels a manifest cares about ask `interest`; deeper values are checked only.
const DECIDED_DEPTH = 2;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERAL = /true|false|null/y;
const SPACE = /[ \t\n\r]*/y;
const PLAIN = /[^"\\\u0000-\u001f]*/y; // eslint-disable-line no-control-regex -- JSON's rule
// A number or a literal ends at one of these: without one, the next chunk may go on with it.
const WORD_END = /[ \t\n\r,\]}:"{[]/g;
const HEX4 = /^[\da-fA-F]{4}$/;

export class JsonStream {
  readonly #interest: JsonInterest;
  readonly #onValue: (text: string, path: readonly JsonFrame[]) => void;
  readonly #onDuplicate: JsonDuplicate;
  #buffer = '';
  #at = 0;
  /** Offset of `#buffer[0]` in the whole text. */
  #base = 0;
  #linesBefore = 0;
  #lineStart = 0;
  #state: State = 'value';
  readonly #stack: JsonFrame[] = [];
  #started = false;
  #done = false;
  /** Where the value being captured starts in `#buffer`, and its depth; -1 when none. */
  #captureAt = -1;
  #captureDepth = 0;

  constructor(
    interest: JsonInterest,
    onValue: (text: string, path: readonly JsonFrame[]) => void,
    onDuplicate: JsonDuplicate,
  ) {
    this.#interest = interest;
    this.#onValue = onValue;
    this.#onDuplicate = onDuplicate;
  }

  /** @throws {JsonStreamError} at the first syntax error. */
  push(chunk: string): void {
    const keep = this.#captureAt >= 0 ? this.#captureAt : this.#at;
    if (keep > 0) this.#drop(keep);
    this.#buffer = this.#buffer.length === 0 ? chunk : this.#buffer + chunk;
    this.#run(false);
  }

  /** @throws {JsonStreamError} when the text is cut short or empty. */
  end(): void {
    this.#run(true);
  }

  #drop(count: number): void {
    const dropped = this.#buffer.slice(0, count);
    let newline = dropped.indexOf('\n');
    while (newline !== -1) {
      this.#linesBefore++;
      this.#lineStart = this.#base + newline + 1;
      newline = dropped.indexOf('\n', newline + 1);
    }
    this.#buffer = this.#buffer.slice(count);
    this.#base += count;
    this.#at -= count;
    if (this.#captureAt >= 0) this.#captureAt -= count;
  }

  #run(final: boolean): void {
    if (this.#done) return;
    const text = this.#buffer;
    let i = this.#at;
    for (;;) {
      i = skipSpace(text, i);
      this.#at = i;
      if (i === text.length) {
        if (!final) return;
        if (this.#state === 'next' && this.#stack.length === 0) {
          this.#done = true;
          return;
        }
        if (!this.#started) throw new JsonStreamError('empty');
        this.#fail(unexpected(text, i, true) as Found);
      }
      this.#started = true;
      const step = this.#step(text, i, final);
      if (step === MORE) return;
      if (typeof step !== 'number') this.#fail(step);
      i = step;
    }
  }

  /** One token at `i`; returns where the next one may start. */
  #step(text: string, i: number, final: boolean): Step {
    const c = text[i] as string;
    const top = this.#stack.at(-1);
    switch (this.#state) {
      case 'next':
        if (top === undefined) return unexpected(text, i, final);
        if (c === ',') this.#state = top.close === '}' ? 'key' : 'value';
        else if (c === top.close) this.#closeContainer(i + 1);
        else return unexpected(text, i, final);
        return i + 1;
      case 'keyOrEnd':
        if (c === '}') {
          this.#closeContainer(i + 1);
          return i + 1;
        }
        return this.#key(text, i, final);
      case 'key':
        return this.#key(text, i, final);
      case 'valueOrEnd':
        if (c === ']') {
          this.#closeContainer(i + 1);
          return i + 1;
        }
        return this.#value(text, i, final);
      case 'value':
        return this.#value(text, i, final);
    }
  }

  #key(text: string, i: number, final: boolean): Step {
    if (text[i] !== '"') return unexpected(text, i, final);
    const end = scanString(text, i, final);
    if (typeof end !== 'number') return end;
    const colon = skipSpace(text, end);
    if (colon === text.length && !final) return MORE;
    if (text[colon] !== ':') return unexpected(text, colon, final);
    const top = this.#stack.at(-1) as JsonFrame;
    const raw = text.slice(i + 1, end - 1);
    // JSON.parse keeps the last of a key given twice; a manifest's author meant one of them.
    const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end)) as string) : raw;
    if (top.keys?.has(key)) this.#onDuplicate(this.#stack.slice(0, -1).map(placeIn), key);
    top.keys?.add(key);
    top.key = key;
    this.#state = 'value';
    return colon + 1;
  }

  #value(text: string, i: number, final: boolean): Step {
    const c = text[i] as string;
    if (c === '{' || c === '[') {
      this.#startValue(i, c);
      this.#stack.push(
        c === '{'
          ? { close: '}', key: undefined, index: 0, keys: new Set() }
          : { close: ']', key: undefined, index: 0 },
      );
      this.#state = c === '{' ? 'keyOrEnd' : 'valueOrEnd';
      return i + 1;
    }
    const end = c === '"' ? scanString(text, i, final) : scanWord(text, i, final);
    if (typeof end !== 'number') return end;
    this.#startValue(i, c);
    this.#endValue(end);
    return end;
  }

  #startValue(i: number, first: string): void {
    if (this.#captureAt >= 0 || this.#stack.length > DECIDED_DEPTH) return;
    if (this.#interest(this.#stack, first) === 'capture') {
      this.#captureAt = i;
      this.#captureDepth = this.#stack.length;
    }
  }

  #closeContainer(end: number): void {
    this.#stack.pop();
    this.#endValue(end);
  }

  #endValue(end: number): void {
    if (this.#captureAt >= 0 && this.#stack.length === this.#captureDepth) {
      const captured = this.#buffer.slice(this.#captureAt, end);
      this.#captureAt = -1;
      this.#onValue(captured, this.#stack);
    }
    const parent = this.#stack.at(-1);
    if (parent !== undefined) parent.index++;
    this.#state = 'next';
  }

  #fail([offset, reason]: Found): never {
    const before = this.#buffer.slice(0, offset);
    const newline = before.lastIndexOf('\n');
    const lines = this.#linesBefore + before.length - before.replaceAll('\n', '').length;
    const lineStart = newline === -1 ? this.#lineStart : this.#base + newline + 1;
    const absolute = this.#base + offset;
    this.#done = true;
    throw new JsonStreamError({
      offset: absolute,
      line: lines + 1,
      column: absolute - lineStart + 1,
      reason,
    });
  }
}

function placeIn(frame: JsonFrame): string | number {
  return frame.close === '}' ? (frame.key ?? '') : frame.index;
}

function scanWord(text: string, i: number, final: boolean): Step {
  WORD_END.lastIndex = i;
  if (!final && !WORD_END.test(text)) return MORE;
  for (const pattern of [NUMBER, LITERAL]) {
    pattern.lastIndex = i;
    if (pattern.test(text)) return pattern.lastIndex;
  }
  return unexpected(text, i, final);
}

function scanString(text: string, start: number, final: boolean): Step {
  let i = start + 1;
  for (;;) {
    PLAIN.lastIndex = i;
    PLAIN.test(text);
    i = PLAIN.lastIndex;
    if (i >= text.length) return final ? [start, 'unterminated string'] : MORE;
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return [i, `unescaped ${describeChar(text, i)} inside a string`];
    const escape = text[i + 1];
    if (escape === undefined) return final ? [start, 'unterminated string'] : MORE;
    if (escape === 'u') {
      const hex = text.slice(i + 2, i + 6);
      if (hex.length < 4 && !final) return MORE;
      if (!HEX4.test(hex)) return [i, 'bad escape sequence in a string'];
      i += 6;
    } else {
      if (!'"\\/bfnrt'.includes(escape)) return [i, 'bad escape sequence in a string'];
      i += 2;
    }
  }
}

function skipSpace(text: string, i: number): number {
  // Most tokens follow one another without space: no regex run for them.
  const code = text.charCodeAt(i);
  if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return i;
  SPACE.lastIndex = i;
  SPACE.test(text);
  return SPACE.lastIndex;
}

function unexpected(text: string, i: number, final: boolean): Found | typeof MORE {
  if (i >= text.length) return [i, 'unexpected end of input'];
  // Half of a surrogate pair: its other half names the character.
  const code = text.charCodeAt(i);
  if (!final && i === text.length - 1 && code >= 0xd800 && code <= 0xdbff) return MORE;
  return [i, `unexpected ${describeChar(text, i)}`];
}
