// @ts-check
/**
 * A bench of a broken run must fail loudly: after every imgjob run, its exit
 * code, its `--json` status line and its results file are checked — job
 * completed, every image `done` with the size of the file its URL names and
 * its GPU delay — before any figure is taken from it.
 */
import { readFile } from 'node:fs/promises';
import { URL } from 'node:url';

import { fileOf, parseImagePath } from './catalog.js';

/** @typedef {import('./catalog.js').Catalog} Catalog */
/** @typedef {import('./workloads.js').Manifest} Manifest */

/**
 * @typedef {object} ImageRecord
 * @property {string} url
 * @property {string} status
 * @property {number} [width]
 * @property {number} [height]
 * @property {number} [perimeter]
 * @property {number} [bytes]
 * @property {number} [attempts]
 * @property {number} [gpu_ms]
 * @property {string} [error]
 */

/**
 * @typedef {object} ResultsFile
 * @property {string} status
 * @property {{ store_id: string, status: string, images: ImageRecord[] }[]} stores
 */

/**
 * @typedef {object} RunFacts
 * @property {number} images Images done.
 * @property {number} bytes Sum of their `bytes` (what imgjob says it read).
 * @property {number} retries Attempts beyond the first, over all images.
 */

/**
 * @param {{ code: number, stdout: string, stderr: string }} run
 * @param {string} resultsFile
 * @param {Manifest} manifest
 * @param {{ catalog: Catalog, gpuDelayMs: number }} expected
 * @returns {Promise<RunFacts>}
 */
export async function verifyRun(run, resultsFile, manifest, expected) {
  const problems = [];
  if (run.code !== 0) problems.push(`exit code ${run.code}`);
  const status = run.stdout.trim().split('\n').pop() ?? '';
  if (!/"status":\s*"completed"/.test(status))
    problems.push(`--json printed ${JSON.stringify(status.slice(0, 300))}`);
  /** @type {ResultsFile | undefined} */
  let results;
  try {
    results = /** @type {ResultsFile} */ (JSON.parse(await readFile(resultsFile, 'utf8')));
  } catch (error) {
    problems.push(`no readable results file ${resultsFile}: ${String(error)}`);
  }
  const facts = { images: 0, bytes: 0, retries: 0 };
  if (results) {
    if (results.status !== 'completed') problems.push(`job ${results.status}`);
    const images = results.stores.flatMap((store) => store.images);
    const urls = manifest.visits.flatMap((visit) => visit.image_url);
    if (images.length !== urls.length)
      problems.push(`${images.length} images in the results, ${urls.length} in the manifest`);
    for (const image of images) {
      const problem = checkImage(image, expected);
      if (problem) {
        problems.push(`${image.url}: ${problem}`);
        if (problems.length > 12) break;
        continue;
      }
      facts.images++;
      facts.bytes += image.bytes ?? 0;
      facts.retries += (image.attempts ?? 1) - 1;
    }
  }
  if (problems.length > 0) {
    const stderr = run.stderr.trim().split('\n').slice(-15).join('\n');
    throw new Error(
      `imgjob run is broken:\n  ${problems.join('\n  ')}\nits stderr ended with:\n${stderr}`,
    );
  }
  return facts;
}

/**
 * @param {ImageRecord} image
 * @param {{ catalog: Catalog, gpuDelayMs: number }} expected
 * @returns {string | undefined} what is wrong with it
 */
function checkImage(image, { catalog, gpuDelayMs }) {
  if (image.status !== 'done') return `${image.status}${image.error ? ` (${image.error})` : ''}`;
  const place = parseImagePath(new URL(image.url).pathname);
  if (!place) return 'not a bench URL';
  const file = fileOf(catalog, place.set, place.n);
  const perimeter = 2 * (file.width + file.height);
  if (image.width !== file.width || image.height !== file.height || image.perimeter !== perimeter) {
    return `measured ${String(image.width)}x${String(image.height)} (perimeter ${String(image.perimeter)}), the file is ${file.width}x${file.height} (${perimeter})`;
  }
  if (image.gpu_ms !== gpuDelayMs) return `gpu_ms ${String(image.gpu_ms)}, expected ${gpuDelayMs}`;
  return undefined;
}
