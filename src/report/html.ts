/**
 * The HTML report: one self-contained file — the dashboard's job page with
 * the data inside. Its script and stylesheet are inlined from the package,
 * and its Content-Security-Policy allows exactly those two (by hash) and no
 * request of any kind, so it opens from a mail or a CI artifact, offline.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { packageRoot } from '../utils/package-root.js';
import { InputError } from '../utils/errors.js';
import type { ResultsDocument } from '../types.js';
import { time } from '../shared/format.js';

/** The package's dist/web/, wherever this module was built into. */
const WEB_DIR = pathToFileURL(`${join(packageRoot(), 'dist', 'web')}/`);

export function htmlReport(
  documents: readonly ResultsDocument[],
  generatedAt = new Date(),
): string {
  const script = asset('app.js').replace(/<\/(script)/gi, '<\\/$1');
  const style = asset('app.css').replace(/<\/(style)/gi, '<\\/$1');
  const data = JSON.stringify({ generated_at: generatedAt.toISOString(), documents })
    // Inside <script type="application/json">: no "</script>", no "<!--", still valid JSON.
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  const csp = [
    "default-src 'none'",
    `script-src '${sha256(script)}'`,
    `style-src '${sha256(style)}'`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  const title = documents.map((document) => `job ${document.job_id} ${document.status}`).join(', ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="imgjob">
<title>imgjob report · ${escapeHtml(title)}</title>
<style>${style}</style>
</head>
<body>
<header class="top"><span class="brand">imgjob report</span><span class="spacer"></span><span class="report-head">${escapeHtml(time(generatedAt.toISOString()))}</span></header>
<main id="main" tabindex="-1"></main>
<script id="imgjob-data" type="application/json">${data}</script>
<script>${script}</script>
</body>
</html>
`;
}

function asset(name: string): string {
  try {
    return readFileSync(new URL(name, WEB_DIR), 'utf8');
  } catch (error) {
    throw new InputError(
      'E_USAGE',
      `the HTML report needs the built dashboard (${name}); build the package (npm run build)`,
      { cause: error },
    );
  }
}

function sha256(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
