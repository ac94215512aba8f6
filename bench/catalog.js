// @ts-check
/**
 * The benchmark's image files and the URLs that name them. Two sets live in
 * `bench/images/`: `full/` (store photos, 50 KB to 1.3 MB, mean about 0.5 MB)
 * and `thumb/` (thumbnails of a few KB). URL `/<set>/<n>.<ext>` is file
 * `n mod k` of its set, so every image of a workload has its own URL (no cache
 * keyed by URL can help) while the server holds only a dozen files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath, URL } from 'node:url';

import { imageSize } from 'image-size';

/** @typedef {'img' | 'thumb'} ImageSet */

/**
 * @typedef {object} ImageFile
 * @property {string} name File name in its folder.
 * @property {string} ext Extension, without the dot.
 * @property {number} size Bytes.
 * @property {number} width
 * @property {number} height
 * @property {Buffer} data The whole file.
 */

/** @typedef {Readonly<Record<ImageSet, readonly ImageFile[]>>} Catalog */

export const IMAGES_DIR = fileURLToPath(new URL('images/', import.meta.url));

/** @type {Readonly<Record<ImageSet, string>>} */
const FOLDERS = { img: 'full', thumb: 'thumb' };

/** @type {readonly ImageSet[]} */
export const IMAGE_SETS = ['img', 'thumb'];

/**
 * Reads both sets, sorted by file name, with their dimensions.
 *
 * @returns {Catalog}
 */
export function loadCatalog() {
  return { img: loadSet('img'), thumb: loadSet('thumb') };
}

/**
 * The file served for image `n` of `set`.
 *
 * @param {Catalog} catalog
 * @param {ImageSet} set
 * @param {number} n
 * @returns {ImageFile}
 */
export function fileOf(catalog, set, n) {
  const files = catalog[set];
  const file = files[n % files.length];
  if (!file) throw new Error(`Expected image files in ${join(IMAGES_DIR, FOLDERS[set])}`);
  return file;
}

/**
 * The URL path of image `n` of `set`: `/img/17.webp`.
 *
 * @param {Catalog} catalog
 * @param {ImageSet} set
 * @param {number} n
 * @returns {string}
 */
export function imagePath(catalog, set, n) {
  return `/${set}/${n}.${fileOf(catalog, set, n).ext}`;
}

/**
 * The set, number and extension a URL path names, or `undefined`.
 *
 * @param {string} path
 * @returns {{ set: ImageSet, n: number, ext: string } | undefined}
 */
export function parseImagePath(path) {
  const match = /^\/(img|thumb)\/(\d{1,9})\.(\w+)$/.exec(path);
  if (!match) return undefined;
  const [, set = '', n = '', ext = ''] = match;
  return { set: set === 'img' ? 'img' : 'thumb', n: Number(n), ext };
}

/**
 * @param {ImageSet} set
 * @returns {ImageFile[]}
 */
function loadSet(set) {
  const folder = join(IMAGES_DIR, FOLDERS[set]);
  return readdirSync(folder)
    .filter((name) => !name.startsWith('.'))
    .sort()
    .map((name) => {
      const data = readFileSync(join(folder, name));
      const { width, height } = imageSize(data);
      return { name, ext: extname(name).slice(1), size: data.length, width, height, data };
    });
}
