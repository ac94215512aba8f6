/**
 * Text that came from outside — an image server's reason phrase or error
 * text, a URL, a store id, a field of a results file — made safe to show.
 * A terminal obeys escape sequences in what it prints (`\x1b[2J` clears the
 * screen, `\x1b]0;…\x07` retitles the window, `\x1b]8;;` plants a link), and
 * bidi controls (`\u202e`) make text read differently from what it is. Every
 * such character is shown as an escape instead; the results file keeps the
 * text as received (JSON escapes what it must).
 */

/**
 * C0 controls, DEL, C1 controls, the bidi embeddings, overrides, isolates and
 * marks, and the Unicode line and paragraph separators.
 */
const UNSAFE =
  // eslint-disable-next-line no-control-regex -- matching controls is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** Those that JSON.stringify leaves as they are: C0 it escapes itself. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * The text with every control and bidi character escaped: `\x1b`, `\n`,
 * `\u202e`. One line, safe for a terminal, a table cell, a log line.
 */
export function outsideText(text: string): string {
  UNSAFE.lastIndex = 0;
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE, escapeChar);
}

/**
 * JSON text (from JSON.stringify) with the characters it leaves raw — DEL,
 * C1, bidi and line separators — written as `\uXXXX` too. Still the same
 * JSON value; now safe to print or to `tail` in a terminal.
 */
export function safeJson(json: string): string {
  return json.replace(UNSAFE_IN_JSON, unicodeEscape);
}

/** A string quoted as JSON shows it, safe to print: `"S\u001b1"`. */
export function quotedOutsideText(text: string): string {
  return safeJson(JSON.stringify(text));
}

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(char: string): string {
  const code = char.charCodeAt(0);
  if (code <= 0xff) return NAMED[char] ?? `\\x${code.toString(16).padStart(2, '0')}`;
  return unicodeEscape(char);
}

function unicodeEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
}
