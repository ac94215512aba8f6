/**
 * What `JSON.parse` does not tell: where a JSON text first breaks the
 * grammar, as `line L column C`, and which objects repeat a key.
 *
 * Node 20's `JSON.parse` names no position for most mistakes ("Unexpected
 * token '}', …"), and newer Node versions word things differently, so a user
 * with a 10 MB manifest would be left searching. This scanner runs only after
 * `JSON.parse` failed; it walks the text once, without recursion (any depth).
 */

export type JsonSyntaxError = {
  /** UTF-16 offset of the offending character (the text length at the end). */
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** What is wrong there, lower case: `unexpected '}'`, `unexpected end of input`. */
  readonly reason: string;
};

/** The first syntax error of `text`, or `undefined` when it is valid JSON. */
export function findJsonSyntaxError(text: string): JsonSyntaxError | undefined {
  const found = scan(text);
  if (found === undefined) return undefined;
  const [offset, reason] = found;
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf('\n') + 1;
  const line = before.length - before.replaceAll('\n', '').length + 1;
  return { offset, line, column: offset - lineStart + 1, reason };
}

/** A key that occurs twice in one object; `JSON.parse` would silently keep the last. */
export type DuplicateKey = {
  /** Where the object is: keys and array indexes from the root. */
  readonly path: readonly (string | number)[];
  readonly key: string;
};

/**
 * Every repeated key of a text that is valid JSON (run it after `JSON.parse`
 * succeeded), in text order. One pass that skips string contents with
 * `indexOf`: a 14 MB manifest takes a few tens of milliseconds.
 */
export function findDuplicateKeys(text: string): DuplicateKey[] {
  // `at`: the key or index of the child being read.
  type Frame = { at: string; readonly keys: Set<string> } | { at: number; readonly keys?: never };
  const frames: Frame[] = [];
  const found: DuplicateKey[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const top = frames.at(-1);
    if (code === 0x22) {
      const end = stringEnd(text, i);
      if (expectKey && top?.keys !== undefined) {
        const raw = text.slice(i + 1, end - 1);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end)) as string) : raw;
        if (top.keys.has(key)) found.push({ path: frames.slice(0, -1).map((f) => f.at), key });
        top.keys.add(key);
        top.at = key;
        expectKey = false;
      }
      i = end - 1;
    } else if (code === 0x7b) {
      frames.push({ at: '', keys: new Set() });
      expectKey = true;
    } else if (code === 0x5b) {
      frames.push({ at: 0 });
    } else if (code === 0x7d || code === 0x5d) {
      frames.pop();
    } else if (code === 0x2c && top !== undefined) {
      if (top.keys === undefined) top.at++;
      else expectKey = true;
    }
  }
  return found;
}

/** Just past the closing quote of the string that starts at `start`. */
function stringEnd(text: string, start: number): number {
  let quote = text.indexOf('"', start + 1);
  for (; quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === 0x5c) slashes++;
    if (slashes % 2 === 0) return quote + 1;
  }
  return text.length;
}

type Found = readonly [offset: number, reason: string];
type State = 'value' | 'key' | 'next';

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const LITERAL = /true|false|null/y;
const SPACE = /[ \t\n\r]*/y;
const HEX4 = /^[\da-fA-F]{4}$/;

function scan(text: string): Found | undefined {
  const stack: string[] = [];
  let state: State = 'value';
  let i = skipSpace(text, 0);
  for (;;) {
    const c = text[i];
    if (state === 'next') {
      const top = stack.at(-1);
      if (top === undefined) return i === text.length ? undefined : unexpected(text, i);
      if (c === ',') state = top === '{' ? 'key' : 'value';
      else if (c === (top === '{' ? '}' : ']')) stack.pop();
      else return unexpected(text, i);
      i = skipSpace(text, i + 1);
    } else if ((c === '{' || c === '[') && state === 'value') {
      stack.push(c);
      i = skipSpace(text, i + 1);
      const empty = text[i] === (c === '{' ? '}' : ']');
      if (empty) stack.pop();
      state = empty ? 'next' : c === '{' ? 'key' : 'value';
      if (empty) i = skipSpace(text, i + 1);
    } else {
      const end = state === 'key' ? scanKey(text, i) : scanScalar(text, i);
      if (typeof end !== 'number') return end;
      state = state === 'key' ? 'value' : 'next';
      i = skipSpace(text, end);
    }
  }
}

/** A key, its colon and the space after; returns where its value starts. */
function scanKey(text: string, i: number): number | Found {
  if (text[i] !== '"') return unexpected(text, i);
  const end = scanString(text, i);
  if (typeof end !== 'number') return end;
  const colon = skipSpace(text, end);
  return text[colon] === ':' ? colon + 1 : unexpected(text, colon);
}

function scanScalar(text: string, i: number): number | Found {
  if (text[i] === '"') return scanString(text, i);
  for (const pattern of [NUMBER, LITERAL]) {
    pattern.lastIndex = i;
    if (pattern.test(text)) return pattern.lastIndex;
  }
  return unexpected(text, i);
}

function scanString(text: string, start: number): number | Found {
  for (let i = start + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return [i, `unescaped ${describeChar(text, i)} inside a string`];
    if (code !== 0x5c) continue;
    const escape = text[i + 1];
    if (escape === undefined) break;
    const ok = escape === 'u' ? HEX4.test(text.slice(i + 2, i + 6)) : '"\\/bfnrt'.includes(escape);
    if (!ok) return [i, 'bad escape sequence in a string'];
    i += escape === 'u' ? 5 : 1;
  }
  return [start, 'unterminated string'];
}

function skipSpace(text: string, i: number): number {
  SPACE.lastIndex = i;
  SPACE.test(text);
  return SPACE.lastIndex;
}

function unexpected(text: string, i: number): Found {
  return [i, i >= text.length ? 'unexpected end of input' : `unexpected ${describeChar(text, i)}`];
}

/** A character as a message names it: `'}'`, or `character U+000A` when not printable. */
export function describeChar(text: string, i: number): string {
  const point = text.codePointAt(i) ?? 0;
  const printable = point > 0x20 && point < 0x7f;
  return printable
    ? `'${String.fromCodePoint(point)}'`
    : `character U+${point.toString(16).toUpperCase().padStart(4, '0')}`;
}
