// @ts-check
/**
 * Builds the dashboard for the browser (part of `npm run build`): type-checks
 * src/web with its own tsconfig (DOM types), bundles it into one script
 * (dist/web/app.js; one file, so the HTML report can carry it inline), and
 * copies the page, its stylesheet and icon. Every asset ships in the package.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/web/`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [`${root}src/web/main.ts`],
  outfile: `${out}app.js`,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
for (const name of ['index.html', 'app.css', 'icon.svg']) {
  copyFileSync(`${root}src/web/${name}`, `${out}${name}`);
}
