/**
 * A store id with a NUL or another control character is refused by the one
 * manifest check that `run` and `serve` share (issue 13 §5), naming its place.
 */
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { parseManifest } from '../src/input/manifest.js';
import { ManifestError } from '../src/utils/errors.js';
import { runMain } from './helpers/main.js';

const URL_OK = 'http://127.0.0.1:9/a.png';
const manifestOf = (...ids: string[]): string =>
  JSON.stringify({
    count: ids.length,
    visits: ids.map((store_id) => ({ store_id, image_url: [URL_OK] })),
  });

function problemsOf(text: string): readonly string[] {
  try {
    parseManifest(text, 'm.json');
  } catch (error) {
    if (error instanceof ManifestError) return error.problems;
    throw error;
  }
  return [];
}

const folders: string[] = [];
afterAll(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

describe('store_id', () => {
  it.each([
    ['a NUL', 'S1\u0000x', '"S1\\u0000x"'],
    ['a newline', 'S1\n', '"S1\\n"'],
    ['an escape (ANSI colour)', '\u001b[31mS1', '"\\u001b[31mS1"'],
    ['DEL', 'S\u007f', '"S\\u007f"'],
    ['a C1 control', 'S\u0085', '"S\\u0085"'],
  ])('with %s is refused, naming its place', (_name, id, shown) => {
    expect(problemsOf(manifestOf('S0', id))).toEqual([
      `visits[1].store_id: must not contain control characters, got ${shown}`,
    ]);
  });

  it('blank is still reported once, as blank', () => {
    expect(problemsOf(manifestOf(' \t'))).toEqual([
      'visits[0].store_id: expected a non-empty string, got " \\t"',
    ]);
  });

  it('may hold any other text: spaces, punctuation, non-Latin letters', () => {
    expect(problemsOf(manifestOf('RP 0001/α-店'))).toEqual([]);
  });

  it('with a NUL makes `imgjob run` exit 2 with the place, before any results file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'imgjob-storeid-'));
    folders.push(dir);
    const manifest = join(dir, 'm.json');
    writeFileSync(manifest, manifestOf('S\u00001'));
    const result = await runMain(['run', manifest, '--gpu-delay', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `imgjob: ${manifest}: visits[0].store_id: must not contain control characters, got "S\\u00001"\n`,
    );
    expect(existsSync(join(dir, 'm.results.json'))).toBe(false);
  });
});
