// What JSON.stringify escapes in a string (lone surrogates too).
// eslint-disable-next-line no-control-regex -- JSON's rule
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(value)` for a string, without its cost for the usual
 * string that needs no escape: the canonical manifest and serve's rows of a
 * submit spell 100,000s of them.
 */
export function jsonString(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
}
