import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The folder of imgjob's own package.json. Found by walking up from this
 * module, so it is right from `src/` (tests), from tsc's `dist/` tree and
 * from the bundled CLI, whose chunks sit elsewhere in `dist/`.
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(folder, 'package.json');
    if (existsSync(manifest) && isImgjob(manifest)) return (root = folder);
    const parent = dirname(folder);
    if (parent === folder) throw new Error('imgjob: cannot find its own package.json');
    folder = parent;
  }
}

/** imgjob's version, from its package.json. */
export function packageVersion(): string {
  const raw = readFileSync(join(packageRoot(), 'package.json'), 'utf8');
  return (JSON.parse(raw) as { version: string }).version;
}

function isImgjob(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown }).name === 'imgjob';
  } catch {
    return false;
  }
}
