/**
 * `URL.canParse`, right for every string. Node 20's optimised fast path of
 * `URL.canParse` reads a one-byte string's Latin-1 bytes as UTF-8, so once
 * V8 has optimised a caller (a few thousand calls), a URL with `ü` or `é`
 * in it is judged unparsable (seen on v20.20; nodejs/node#48816 was a bug
 * of the same fast path). Only plain-ASCII text takes that path here.
 */
export function canParseUrl(text: string): boolean {
  if (ASCII.test(text)) return URL.canParse(text);
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
}

// eslint-disable-next-line no-control-regex -- every ASCII character, controls too
const ASCII = /^[\u0000-\u007f]*$/;
