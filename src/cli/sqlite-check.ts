/**
 * better-sqlite3 is an optional dependency: only `serve` needs it, and it is
 * a native module that compiles from source where no prebuilt binary can be
 * fetched. `run` and `status` never load it; `serve` checks it first and,
 * when it is missing or did not build, says exactly what to run.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { InputError } from '../utils/errors.js';
import { packageRoot } from '../utils/package-root.js';

const PACKAGE_ROOT = packageRoot();

/** Loads better-sqlite3 and opens an in-memory database; an InputError (exit 2) says how to fix it. */
export async function requireSqlite(): Promise<void> {
  let Sqlite: typeof import('better-sqlite3');
  try {
    ({ default: Sqlite } = await import('better-sqlite3'));
  } catch (error) {
    if (!isMissing(error)) throw error;
    throw new InputError('E_USAGE', [
      'serve needs the SQLite module better-sqlite3, which is not installed (only serve needs it; it is an optional dependency)',
      installAdvice(`better-sqlite3@${wantedRange()}`),
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

// Node finds the module in any node_modules folder above imgjob's own: a
// global imgjob sees global packages, an installed one its project's.
function installAdvice(spec: string): string {
  const parent = dirname(PACKAGE_ROOT);
  if (basename(parent) !== 'node_modules') {
    return `install it: cd ${PACKAGE_ROOT} && npm install ${spec} (or npm install there without --omit=optional)`;
  }
  return `install it: npm install -g ${spec} for a global imgjob; else cd ${dirname(parent)} && npm install ${spec}`;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

function wantedRange(): string {
  const raw = readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8');
  const pkg = JSON.parse(raw) as { optionalDependencies?: Record<string, string> };
  return pkg.optionalDependencies?.['better-sqlite3'] ?? 'latest';
}
