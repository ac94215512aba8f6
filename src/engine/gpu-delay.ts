import type { GpuDelay } from '../types.js';

/**
 * Picks the simulated GPU time of one image.
 *
 * With a seed, the delay is a pure function of (seed, store id, image index),
 * so a rerun or a resumed run gives every image the same delay whatever order
 * the work happens in. Without one, it is `Math.random()`.
 */
export function createGpuDelayPicker(
  range: GpuDelay,
  seed: number | undefined,
): (storeId: string, imageIndex: number) => number {
  const span = range.max - range.min;
  if (span === 0) return () => range.min;
  const uniform =
    seed === undefined
      ? () => Math.random()
      : (storeId: string, imageIndex: number) => unitFromHash(seed, storeId, imageIndex);
  return (storeId, imageIndex) => range.min + Math.floor(uniform(storeId, imageIndex) * (span + 1));
}

/**
 * Parses `--gpu-delay`: `0`, `250` (fixed) or `100-400` (uniform, inclusive).
 * Returns undefined when the text is not of that form.
 */
export function parseGpuDelay(text: string): GpuDelay | undefined {
  const match = /^(\d{1,7})(?:-(\d{1,7}))?$/.exec(text.trim());
  if (!match?.[1]) return undefined;
  const min = Number(match[1]);
  const max = match[2] === undefined ? min : Number(match[2]);
  return max >= min ? { min, max } : undefined;
}

export function formatGpuDelay(range: GpuDelay): string {
  return range.min === range.max ? String(range.min) : `${range.min}-${range.max}`;
}

// FNV-1a over the place, finished with a murmur3 mix: cheap, stable across
// platforms and well spread for neighbouring indices.
function unitFromHash(seed: number, storeId: string, imageIndex: number): number {
  let h = 0x811c9dc5 ^ (seed >>> 0) ^ Math.floor(seed / 0x100000000);
  const mixIn = (value: number): void => {
    h = Math.imul(h ^ value, 0x01000193);
  };
  for (let i = 0; i < storeId.length; i++) mixIn(storeId.charCodeAt(i));
  mixIn(0xff);
  mixIn(imageIndex & 0xffff);
  mixIn(imageIndex >>> 16);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x100000000;
}
