// @ts-check
/**
 * The queue's Redis scripts (`src/queue/lua/*.lua`) are read at run time
 * from `lua/` beside the module that loads them (src/queue/lua-scripts.ts).
 * That module runs from two places in `dist/`: tsc's output
 * (`dist/queue/`, the library) and the bundled command line's chunks
 * (`dist/`). This copies the scripts beside both; `files: ["dist"]` ships
 * them.
 *
 *   node scripts/lua-files.js
 */
import { cpSync, rmSync } from 'node:fs';

for (const target of ['dist/queue/lua', 'dist/lua']) {
  rmSync(target, { recursive: true, force: true });
  cpSync('src/queue/lua', target, { recursive: true });
}
