/**
 * quick-size.ts is a fast path in front of image-size: whatever it answers
 * must be what image-size answers for the same bytes. Checked on every real
 * JPEG, PNG, WebP and GIF in the repository, whole, cut short at random
 * places and with random bytes changed.
 */
import { readdirSync, readFileSync } from 'node:fs';

import fc from 'fast-check';
import { imageSize } from 'image-size';
import { describe, expect, it } from 'vitest';

import { quickSize } from '../src/download/quick-size.js';

const folders = ['../fixtures/images/', '../bench/images/full/', '../bench/images/thumb/'].map(
  (path) => new URL(path, import.meta.url),
);
const files = folders.flatMap((folder) =>
  readdirSync(folder)
    .filter((name) => /\.(jpe?g|png|webp|gif)$/i.test(name) && !name.startsWith('truncated'))
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(new URL(name, folder))) })),
);

function imageSizeOf(bytes: Uint8Array): { width: number; height: number } | undefined {
  try {
    const { width, height } = imageSize(bytes);
    return { width, height };
  } catch {
    return undefined;
  }
}

describe('quickSize', () => {
  it.each(files.map((file) => [file.name, file.bytes] as const))(
    'reads %s as image-size does',
    (_name, bytes) => {
      const quick = quickSize(bytes);
      expect(quick).toBeDefined();
      // image-size must read the file too: a throw there (undefined) is a mismatch, not a pass.
      const expected = imageSizeOf(bytes);
      expect(expected).toBeDefined();
      expect({ width: quick?.width, height: quick?.height }).toEqual(expected);
    },
  );

  it('never disagrees with image-size on cut or mutated heads', () => {
    const head = fc
      .record({
        file: fc.constantFrom(...files),
        cut: fc.double({ min: 0, max: 1, noNaN: true }),
        flips: fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
      })
      .map(({ file, cut, flips }) => {
        const bytes = file.bytes.slice(0, Math.floor(file.bytes.length * cut));
        for (const [at, value] of flips)
          if (bytes.length > 0) bytes[at % Math.min(bytes.length, 4096)] = value;
        return bytes;
      });
    fc.assert(
      fc.property(head, (bytes) => {
        const quick = quickSize(bytes);
        if (quick === undefined) return;
        expect({ width: quick.width, height: quick.height }).toEqual(imageSizeOf(bytes));
      }),
      { numRuns: 3000, seed: 7 },
    );
  });
});
