/**
 * Where the download thread's module is. A thread starts from a file, not
 * from an import, so the file is named here twice over: by a type import of
 * the module, which tsc and lint's import rules see (renaming or moving
 * worker.ts breaks the build, and the folder arrows apply to it), and by the
 * URL the thread starts from. The two agree wherever imgjob runs: worker.js
 * sits beside this module in tsc's output (dist/download/threads/) and in
 * the bundle (scripts/bundle.js writes dist/worker.js beside its chunks).
 * From the TypeScript sources (vitest) there is no worker.js: threads run
 * from a build only.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { ThreadInit } from './worker.js';

export type { ThreadInit };

export const WORKER_URL = new URL('./worker.js', import.meta.url);

/**
 * Throws when the thread's module is missing: a broken package (a bundler
 * setting, a `files` list), not something the user did. It is a bug, so the
 * command stops with exit 70 rather than run on one thread unnoticed; the
 * message says how to run meanwhile.
 */
export function expectWorkerFile(url: URL = WORKER_URL): void {
  const path = fileURLToPath(url);
  if (existsSync(path)) return;
  throw new Error(
    `the download threads' module is missing: ${path} (imgjob is not fully installed or built; --threads 1 runs without it)`,
  );
}
