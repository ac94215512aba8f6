/**
 * What a newcomer copies from the docs works as written: the README's
 * "Try it" names the fast install and the Node version package.json asks
 * for, and docs/library.md's `startServer` example runs as it stands (it
 * defines everything it uses) against the built package.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string): string => readFileSync(join(REPO, path), 'utf8');

/** The text of the section under `## <title>`, to the next `## `. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  expect(start, `no section ${title}`).toBeGreaterThan(-1);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

describe('the README front part', () => {
  const readme = read('README.md');
  const tryIt = section(readme, 'Try it');

  it('"Try it" installs without the SQLite build and says what serve then needs', () => {
    expect(tryIt).toContain('npm ci --omit=optional && npm run demo');
    expect(tryIt).toContain('npm install better-sqlite3');
  });

  it('names the Node version package.json asks for', () => {
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines;
    const version = /^>=(\d+\.\d+\.\d+)$/.exec(engines.node)?.[1];
    expect(version).toBeDefined();
    expect(tryIt).toContain(`Node.js ${version ?? ''} or later`);
    // No other spelling of it anywhere in the README.
    for (const match of readme.matchAll(/Node(?:\.js)? (\d+\.\d+(?:\.\d+)?)/g))
      expect(match[1]).toBe(version);
  });
});

describe('docs/library.md', { tags: ['e2e'] }, () => {
  it('runs the startServer example as written', async () => {
    const library = read('docs/library.md');
    const example = /```ts\n(import \{ startServer \} from 'imgjob\/serve';[\s\S]*?)```/.exec(
      library,
    )?.[1];
    expect(example).toBeDefined();
    // Run against this checkout's build, in an empty folder (its jobs.db goes there).
    const code = (example ?? '').replace(
      "'imgjob/serve'",
      JSON.stringify(join(REPO, 'dist', 'serve', 'index.js')),
    );
    const cwd = mkdtempSync(join(tmpdir(), 'imgjob-docs-'));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--input-type=module', '-e', code],
      { cwd },
    );
    expect(stdout).toMatch(/^http:\/\/127\.0\.0\.1:\d+\n$/);
  });
});
