/** Hints for the usual mix-ups, and the small words: main() in this process, as the CLI runs it. *
 * @module-tag e2e
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import type { ResultsDocument } from '../src/types.js';
import { runJobHere, runMain, type MainResult } from './helpers/main.js';
import { caseBed } from './helpers/case-bed.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

const bed = caseBed('hints');

/** `imgjob <args>` through main() in this process: no case here is about the process. */
const imgjob = (args: string[]): Promise<MainResult> =>
  args[0] === 'run' ? runJobHere(args) : runMain(args);

const writeManifest = (name: string, paths: string[]): string =>
  bed.writeManifest({ S1: paths }, name);

const FAST = ['--gpu-delay', '0', '--retries', '0'];

describe('mix-ups', () => {
  it('a results file given to run: did you mean imgjob status?', async () => {
    const manifest = writeManifest('m.json', ['/img/image.png']);
    expect((await imgjob(['run', manifest, ...FAST])).code).toBe(0);
    const results = join(bed.dir, 'm.results.json');
    const { code, stderr } = await imgjob(['run', results, ...FAST, '-o', join(bed.dir, 'x.json')]);
    expect(code).toBe(2);
    expect(stderr).toContain(
      `imgjob: ${results}: this is an imgjob results file; did you mean \`imgjob status ${results}\`?`,
    );
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a manifest given to status: did you mean imgjob run?', async () => {
    const manifest = writeManifest('m.json', ['/img/image.png']);
    const { code, stderr } = await imgjob(['status', manifest]);
    expect(code).toBe(2);
    expect(stderr).toContain(
      `imgjob: ${manifest} looks like a manifest; did you mean \`imgjob run ${manifest}\`?`,
    );
  });

  it('imgjob m.json suggests imgjob run m.json', async () => {
    writeManifest('m.json', ['/img/image.png']);
    const { code, stderr } = await imgjob(['m.json', '--resume']);
    expect(code).toBe(2);
    expect(stderr).toBe(
      "imgjob: unknown command 'm.json'; did you mean `imgjob run m.json --resume`?\n",
    );
    expect(bed.server.requests).toHaveLength(0);
  });

  it('names every manifest whose results file is in the way, not only the first', async () => {
    const a = writeManifest('a.json', ['/img/image.png']);
    const b = writeManifest('b.json', ['/img/image.gif']);
    expect((await imgjob(['run', a, b, ...FAST])).code).toBe(0);
    const { code, stderr } = await imgjob(['run', a, b, ...FAST]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(bed.dir, 'a.results.json')} already exists`);
    expect(stderr).toContain(`${join(bed.dir, 'b.results.json')} already exists`);
  });
});

describe('small words', () => {
  it('says "1 image in 1 store", not "1 images in 1 stores"', async () => {
    const manifest = writeManifest('m.json', ['/img/image.png']);
    const { stdout } = await imgjob(['run', manifest, ...FAST]);
    expect(stdout).toMatch(
      /completed — 1 image \(1 done, 0 failed, 0 skipped\) in 1 store \(1 completed\)/,
    );
    expect(stdout).toMatch(/run took [\d.]+s: 1 image at [\d.]+ images\/s, [\d.]+ [KM]?B at /);
  });

  it('--gpu-delay 400-100 says that min is above max', async () => {
    const manifest = writeManifest('m.json', ['/img/image.png']);
    const { code, stderr } = await imgjob(['run', manifest, '--gpu-delay', '400-100']);
    expect(code).toBe(2);
    expect(stderr).toContain('(min 400 is above max 100)');
  });

  it('-v, -V and --version print the version', async () => {
    for (const flag of ['-v', '-V', '--version']) {
      const { code, stdout } = await imgjob([flag]);
      expect(code).toBe(0);
      expect(stdout).toBe(`${VERSION}\n`);
    }
  });

  it('"not an image" names the Content-Type the server sent', async () => {
    const manifest = writeManifest('m.json', ['/img/not-an-image.html?type=text/html']);
    const { code } = await imgjob(['run', manifest, ...FAST]);
    expect(code).toBe(1);
    const results = JSON.parse(
      readFileSync(join(bed.dir, 'm.results.json'), 'utf8'),
    ) as ResultsDocument;
    expect(results.stores[0]?.error).toMatch(/not an image: .* \(Content-Type: text\/html\)$/);
  });
});
