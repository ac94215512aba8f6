// @ts-check
/**
 * The benchmark's image files and the URLs that name them. Two sets live in
 * `bench/images/`: `full/` (store photos, 50 KB to 1.3 MB, mean about 0.5 MB)
 * and `thumb/` (thumbnails of a few KB). URL `/<set>/<n>.<ext>` is file
 * `n mod k` of its set, so every image of a workload has its own URL (no cache
 * keyed by URL can help) while the server holds only a dozen files.
 *
 * A third set, `mix`, is made at bench time (no large files committed): the
 * sizes of real store photos (see MIX) as valid JPEG/PNG headers followed by
 * filler bytes. The measurers read only the header; the rest is read and
 * dropped, as a real body would be. URL `/mix/<n>.<ext>` is entry `n mod 20`
 * of the mix pattern.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath, URL } from 'node:url';

import { imageSize } from 'image-size';

/** @typedef {'img' | 'thumb' | 'mix'} ImageSet */

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
const FOLDERS = { img: 'full', thumb: 'thumb', mix: '(made at bench time)' };

/** @type {readonly ImageSet[]} */
export const IMAGE_SETS = ['img', 'thumb', 'mix'];

/**
 * The realistic mix of store photos (issue 9): share of the images, format,
 * dimensions and size in bytes.
 *
 * @type {readonly { share: number, name: string, ext: 'jpg' | 'png', width: number, height: number, size: number }[]}
 */
export const MIX = [
  { share: 7, name: 'a-640x480.jpg', ext: 'jpg', width: 640, height: 480, size: 64_000 },
  { share: 5, name: 'b-1600x1200.jpg', ext: 'jpg', width: 1600, height: 1200, size: 370_000 },
  { share: 3, name: 'c-1600x1200.jpg', ext: 'jpg', width: 1600, height: 1200, size: 420_000 },
  { share: 2, name: 'd-4000x3000.jpg', ext: 'jpg', width: 4000, height: 3000, size: 1_900_000 },
  { share: 3, name: 'e-1024x768.png', ext: 'png', width: 1024, height: 768, size: 1_400_000 },
];

/**
 * Reads both sets, sorted by file name, with their dimensions.
 *
 * @returns {Catalog}
 */
export function loadCatalog() {
  return { img: loadSet('img'), thumb: loadSet('thumb'), mix: makeMix() };
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
  const match = /^\/(img|thumb|mix)\/(\d{1,9})\.(\w+)$/.exec(path);
  if (!match) return undefined;
  const [, set = '', n = '', ext = ''] = match;
  return { set: /** @type {ImageSet} */ (set), n: Number(n), ext };
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

/**
 * The mix as 20 entries (7 + 5 + 3 + 2 + 3, spread out so that neighbouring
 * URLs differ), each kind one file in memory.
 *
 * @returns {ImageFile[]}
 */
function makeMix() {
  const files = MIX.map((kind) => ({
    name: kind.name,
    ext: kind.ext,
    size: kind.size,
    width: kind.width,
    height: kind.height,
    data: kind.ext === 'png' ? fakePng(kind) : fakeJpeg(kind),
  }));
  /** @type {ImageFile[]} */
  const pattern = [];
  const left = MIX.map((kind) => kind.share);
  while (pattern.length < 20) {
    left.forEach((count, index) => {
      const file = files[index];
      if (count > 0 && file) {
        pattern.push(file);
        left[index] = count - 1;
      }
    });
  }
  return pattern;
}

/**
 * A baseline JPEG: SOI, a JFIF APP0, a SOF0 with the dimensions, a comment
 * segment, then filler up to `size` and EOI.
 *
 * @param {{ width: number, height: number, size: number, name: string }} kind
 */
function fakeJpeg({ width, height, size, name }) {
  const head = Buffer.from([
    0xff,
    0xd8, // SOI
    0xff,
    0xe0,
    0x00,
    0x10,
    0x4a,
    0x46,
    0x49,
    0x46,
    0x00,
    0x01,
    0x01,
    0x00,
    0x00,
    0x01,
    0x00,
    0x01,
    0x00,
    0x00,
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    height >> 8,
    height & 0xff,
    width >> 8,
    width & 0xff,
    0x03,
    0x01,
    0x22,
    0x00,
    0x02,
    0x11,
    0x01,
    0x03,
    0x11,
    0x01,
  ]);
  const file = filler(size, name);
  head.copy(file, 0);
  file[size - 2] = 0xff;
  file[size - 1] = 0xd9; // EOI
  return file;
}

/**
 * A PNG: signature, IHDR (8-bit RGB), then filler up to `size`.
 *
 * @param {{ width: number, height: number, size: number, name: string }} kind
 */
function fakePng({ width, height, size, name }) {
  const head = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(head, 0);
  head.writeUInt32BE(13, 8);
  head.write('IHDR', 12, 'latin1');
  head.writeUInt32BE(width, 16);
  head.writeUInt32BE(height, 20);
  head[24] = 8; // bit depth
  head[25] = 2; // RGB
  const file = filler(size, name);
  head.copy(file, 0);
  return file;
}

/**
 * `size` bytes that do not compress (sha256 in counter mode), the same on every run.
 *
 * @param {number} size
 * @param {string} seed
 */
function filler(size, seed) {
  const file = Buffer.alloc(size);
  for (let at = 0, n = 0; at < size; at += 32, n++) {
    createHash('sha256').update(`${seed}:${n}`).digest().copy(file, at);
  }
  return file;
}
