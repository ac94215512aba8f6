import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { imageSize } from 'image-size';
import { describe, expect, it } from 'vitest';

const fixture = (path: string) => readFileSync(new URL(`../fixtures/${path}`, import.meta.url));

type Expected = Record<string, { width: number; height: number; type: string }>;
const expected = JSON.parse(fixture('images/expected.json').toString()) as Expected;
const entries = Object.entries(expected);
const NOT_IMAGES = ['expected.json', 'not-an-image.html', 'truncated.png'];

/** The JPEG markers before the first scan, with the offset of each. */
function jpegMarkers(bytes: Buffer): { marker: number; offset: number }[] {
  const markers = [];
  for (let offset = 2; offset + 4 <= bytes.length; offset += 2 + bytes.readUInt16BE(offset + 2)) {
    const marker = bytes[offset + 1] ?? 0;
    markers.push({ marker, offset });
    if (marker === 0xda) break;
  }
  return markers;
}

describe('fixtures/images', () => {
  it.each(entries)('%s has the dimensions and type of expected.json', (file, size) => {
    const measured = imageSize(fixture(`images/${file}`));
    expect({ width: measured.width, height: measured.height, type: measured.type }).toEqual(size);
  });

  it('lists every image of the folder in expected.json', () => {
    const files = readdirSync(new URL('../fixtures/images/', import.meta.url));
    expect(files.filter((file) => !NOT_IMAGES.includes(file)).sort()).toEqual(
      Object.keys(expected).sort(),
    );
  });

  it('has non-square images with distinct sizes and perimeters, so swaps show', () => {
    const sizes = entries.map(([, { width, height }]) => ({ width, height }));
    expect(sizes.every(({ width, height }) => width !== height)).toBe(true);
    const perimeters = new Set(sizes.map(({ width, height }) => 2 * (width + height)));
    expect(perimeters.size).toBe(sizes.length);
  });

  it('exif-rotated.jpg carries EXIF orientation 6 and its stored size', () => {
    expect(imageSize(fixture('images/exif-rotated.jpg'))).toMatchObject({
      width: 80,
      height: 30,
      orientation: 6,
    });
  });

  it('big-exif.jpg has its frame header beyond the first 64 KB', () => {
    const bytes = fixture('images/big-exif.jpg');
    const sof = jpegMarkers(bytes).find(({ marker }) => marker === 0xc0);
    expect(sof?.offset).toBeGreaterThan(64 * 1024);
    expect(() => imageSize(bytes.subarray(0, 64 * 1024))).toThrow();
  });

  it('progressive.jpg is progressive (SOF2) and baseline.jpg is baseline (SOF0)', () => {
    const frames = (file: string) =>
      jpegMarkers(fixture(`images/${file}`))
        .map(({ marker }) => marker)
        .filter((marker) => marker >= 0xc0 && marker <= 0xc2);
    expect(frames('progressive.jpg')).toEqual([0xc2]);
    expect(frames('baseline.jpg')).toEqual([0xc0]);
  });

  it('image.webp is lossy (VP8) and image-lossless.webp is lossless (VP8L)', () => {
    expect(fixture('images/image.webp').toString('latin1', 12, 16)).toBe('VP8 ');
    expect(fixture('images/image-lossless.webp').toString('latin1', 12, 16)).toBe('VP8L');
  });

  it.each(['truncated.png', 'not-an-image.html'])('%s has no readable dimensions', (file) => {
    expect(() => imageSize(fixture(`images/${file}`))).toThrow();
  });
});

describe('fixtures/store-master.csv', () => {
  const bytes = fixture('store-master.csv').toString('utf8');

  it('ends every line with CRLF and has no final newline', () => {
    expect(bytes.split('\r\n').length).toBeGreaterThan(5);
    expect(bytes.replaceAll('\r\n', '')).not.toMatch(/[\r\n]/);
    expect(bytes.endsWith('\n')).toBe(false);
  });

  it('quotes names that hold commas or an escaped double quote', () => {
    const rows = parse<Record<string, string>>(bytes, { columns: true });
    expect(Object.keys(rows[0] ?? {})).toEqual(['AreaCode', 'StoreName', 'StoreID']);
    expect(rows.map((row) => row.StoreID)).toEqual(
      expect.arrayContaining(['S00339218', 'S01408764', 'RP00001', 'RP00002', 'RP00003']),
    );
    expect(rows.filter((row) => row.StoreName?.includes(',')).length).toBeGreaterThan(1);
    expect(rows.some((row) => row.StoreName?.includes('"'))).toBe(true);
    expect(bytes).toMatch(/,"[^"\r\n]*,[^"\r\n]*",/);
    expect(bytes).toContain('""');
  });
});

describe('fixtures/manifests/demo.json', () => {
  type Manifest = { count: number; visits: { store_id: string; image_url: string[] }[] };
  const manifest = JSON.parse(fixture('manifests/demo.json').toString()) as Manifest;
  const urls = manifest.visits.flatMap((visit) => visit.image_url);

  it('counts its visits and repeats one store, to show merging', () => {
    expect(manifest.count).toBe(manifest.visits.length);
    const ids = manifest.visits.map((visit) => visit.store_id);
    expect(new Set(ids).size).toBe(ids.length - 1);
  });

  it('points at the template origin and uses every image, plus one 404', () => {
    const paths = urls.map((url) => url.replace('http://127.0.0.1:8765/images/', ''));
    const files = new Set(Object.keys(expected));
    expect(paths.filter((path) => !files.has(path))).toEqual(['missing.jpg']);
    expect([...files].filter((file) => !paths.includes(file))).toEqual([]);
  });
});
