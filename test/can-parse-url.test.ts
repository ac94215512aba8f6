import { describe, expect, it } from 'vitest';

import { canParseUrl } from '../src/utils/can-parse-url.js';

describe('canParseUrl', () => {
  it('judges a Latin-1 URL parsable on every call, after V8 has optimised the caller', () => {
    // Node 20's optimised URL.canParse reads a one-byte string as UTF-8: from
    // about the 4,000th call on, 'https://bücher.example/' was judged broken.
    const latin1 = 'https://bücher.example/ä.jpg';
    let refused = 0;
    for (let i = 0; i < 100_000; i++) {
      if (!canParseUrl(i % 2 === 0 ? latin1 : `https://a.example/${String(i)}.jpg`)) refused++;
    }
    expect(refused).toBe(0);
  });

  it.each([
    ['https://example.com/a.jpg', true],
    ['http://[::1]:8080/a.png', true],
    ['https://bücher.example/ä😀', true],
    ['https://exa mple.com/', false],
    ['http://[::1/a', false],
    ['http://ü[/', false],
    ['not a url', false],
  ])('%s → %s', (text, expected) => {
    expect(canParseUrl(text)).toBe(expected);
  });
});
