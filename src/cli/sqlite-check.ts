/**
 * better-sqlite3 is an optional dependency: only `serve` needs it, and it is
 * a native module that compiles from source where no prebuilt binary can be
 * fetched. `run` and `status` never load it; `serve` checks it first and,
 * when it is missing or did not build, says exactly what to run.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { InputError } from '../utils/errors.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Loads better-sqlite3 and opens an in-memory database; an InputError (exit 2) says how to fix it. */
export async function requireSqlite(): Promise<void> {
  let Sqlite: typeof import('better-sqlite3');
  try {
    ({ default: Sqlite } = await import('better-sqlite3'));
  } catch (error) {
    if (!isMissing(error)) throw error;
    throw new InputError('E_USAGE', [
      'serve needs the SQLite module better-sqlite3, which is not installed (only serve needs it; it is an optional dependency)',
      `install it beside imgjob: cd ${PACKAGE_ROOT} && npm install --no-save better-sqlite3@${wantedRange()}`,
    ]);
  }
  try {
    new Sqlite(':memory:').close();
  } catch (error) {
    const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    throw new InputError('E_USAGE', [
      `serve needs better-sqlite3, whose native part does not load: ${reason}`,
      `rebuild it: cd ${PACKAGE_ROOT} && npm rebuild better-sqlite3 (without a prebuilt binary for this platform this compiles it: python3, make and a C++ compiler)`,
    ]);
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

function wantedRange(): string {
  const raw = readFileSync(new URL('package.json', `file://${PACKAGE_ROOT}`), 'utf8');
  const pkg = JSON.parse(raw) as { optionalDependencies?: Record<string, string> };
  return pkg.optionalDependencies?.['better-sqlite3'] ?? 'latest';
}
