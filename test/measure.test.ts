import { readFileSync } from 'node:fs';

import { imageSize } from 'image-size';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { DownloadError } from '../src/utils/errors.js';
import { HeaderProbe, measure, type Dimensions } from '../src/download/measure.js';

// Counts image-size runs while keeping the real implementation.
vi.mock('image-size', async (importOriginal) => {
  const real = await importOriginal<typeof import('image-size')>();
  return { ...real, imageSize: vi.fn(real.imageSize) };
});

const FIXTURES = new URL('../fixtures/images/', import.meta.url);
const expected = JSON.parse(readFileSync(new URL('expected.json', FIXTURES), 'utf8')) as Record<
  string,
  Dimensions
>;
const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, FIXTURES)));

function probeInChunks(bytes: Uint8Array, size: number, probe = new HeaderProbe()): Dimensions {
  for (let at = 0; at < bytes.length && !probe.dimensions; at += size) {
    probe.push(bytes.subarray(at, at + size));
  }
  return probe.finish();
}

function notImage(run: () => unknown): DownloadError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DownloadError);
    expect((error as DownloadError).code).toBe('E_NOT_IMAGE');
    return error as DownloadError;
  }
  throw new Error('expected an E_NOT_IMAGE error');
}

beforeEach(() => {
  vi.mocked(imageSize).mockClear();
});

describe('HeaderProbe', () => {
  it.each(Object.entries(expected))('reads the stored size of %s', (name, size) => {
    expect(probeInChunks(fixture(name), 1 << 20)).toEqual(size);
  });

  it.each([1, 7, 1000])('gives the same sizes when the bytes come %i at a time', (chunk) => {
    for (const [name, size] of Object.entries(expected)) {
      expect(probeInChunks(fixture(name), chunk), name).toEqual(size);
    }
  });

  it('keeps the width and height as stored in an EXIF-rotated JPEG', () => {
    expect(probeInChunks(fixture('exif-rotated.jpg'), 100)).toEqual({
      width: 80,
      height: 30,
      type: 'jpg',
    });
  });

  it('runs image-size a few times, not once per chunk, over a byte-by-byte stream', () => {
    const bytes = fixture('big-exif.jpg');
    const probe = new HeaderProbe();
    for (const byte of bytes) probe.push(Uint8Array.of(byte));
    expect(probe.finish()).toEqual(expected['big-exif.jpg']);
    // At 4, 8, 16, 32 and 64 KiB, where the header is still missing; at the
    // end (89,885 bytes) the JPEG is read without image-size (quick-size.ts).
    expect(vi.mocked(imageSize)).toHaveBeenCalledTimes(5);
  });

  it('holds no bytes once the dimensions are known and ignores what follows', () => {
    const probe = new HeaderProbe();
    const png = fixture('image.png');
    probe.push(png);
    probe.push(new Uint8Array(8192));
    expect(probe.dimensions).toEqual(expected['image.png']);
    expect(probe.bytesHeld).toBe(0);
    probe.push(new Uint8Array(1 << 20));
    expect(probe.bytesHeld).toBe(0);
    expect(probe.finish()).toEqual(expected['image.png']);
  });

  it('gives up at the header window instead of holding an endless body', () => {
    const probe = new HeaderProbe({ url: 'http://x/a', maxHeaderBytes: 50_000 });
    const zeros = new Uint8Array(16_384);
    const error = notImage(() => {
      for (let i = 0; i < 100; i++) probe.push(zeros);
    });
    expect(probe.bytesHeld).toBeLessThanOrEqual(50_000);
    expect(error.message).toContain('no dimensions in the first 50000 bytes');
    expect(error.url).toBe('http://x/a');
  });

  it('says what came when the body is an HTML page', () => {
    const probe = new HeaderProbe({ url: 'http://x/page' });
    probe.push(fixture('not-an-image.html'));
    const error = notImage(() => probe.finish());
    expect(error.message).toMatch(/^not an image: 233 bytes starting "<!doctype html> <html l/);
    expect(error.transient).toBe(false);
  });

  it('names the format of a broken header', () => {
    const probe = new HeaderProbe();
    probe.push(fixture('truncated.png'));
    expect(notImage(() => probe.finish()).message).toMatch(/^not a readable image \(Invalid PNG\)/);
  });

  it('says so when the body is empty', () => {
    expect(notImage(() => new HeaderProbe().finish()).message).toBe(
      'not an image: the body was empty',
    );
  });

  it('does not take a 0×0 image for an image', () => {
    const png = fixture('image.png').slice();
    png.fill(0, 16, 24); // IHDR width and height
    const probe = new HeaderProbe();
    probe.push(png);
    expect(notImage(() => probe.finish()).message).toContain('png without a valid size');
  });

  it('does not take an HTML page with an inline SVG icon for an SVG', () => {
    const page = '<!doctype html><html><body><svg width="16" height="16"></svg></body></html>';
    expect(measure(new TextEncoder().encode(page))).toBe('unsupported file type: html');
    expect(measure(fixture('image.svg'))).toEqual(expected['image.svg']);
  });

  it('never reports a size from a head cut before the header is complete', () => {
    const bytes = fixture('big-exif.jpg');
    const sof = 88_909; // offset of the SOF0 segment in this file
    for (const cut of [4096, 8192, 65_536, sof, sof + 4, sof + 8]) {
      const probe = new HeaderProbe();
      probe.push(bytes.subarray(0, cut));
      expect(probe.settle(), `cut at ${cut}`).toBeUndefined();
    }
    const probe = new HeaderProbe();
    probe.push(bytes.subarray(0, sof + 9));
    expect(probe.settle()).toEqual(expected['big-exif.jpg']);
  });
});
