/**
 * The heap growth a job starts with: huge jobs keep a tight heap (memory),
 * smaller ones get room for their socket reads' garbage (CPU).
 */
import { describe, expect, it } from 'vitest';

import {
  HEADROOM_BYTES,
  heapGrowingPercent,
  TIGHT_FROM_IMAGES,
  TIGHT_PERCENT,
} from '../src/run/heap-growth.js';

const MB = 1024 * 1024;

describe('heapGrowingPercent', () => {
  it('keeps a huge job tight whatever its heap', () => {
    expect(heapGrowingPercent(TIGHT_FROM_IMAGES, 8 * MB)).toBe(TIGHT_PERCENT);
    expect(heapGrowingPercent(10_000_000, 900 * MB)).toBe(TIGHT_PERCENT);
  });

  it('leaves a smaller job its headroom above the live set', () => {
    for (const live of [15, 20, 30, 40]) {
      const percent = heapGrowingPercent(2_000, live * MB);
      expect((live * MB * percent) / 100).toBeGreaterThanOrEqual(HEADROOM_BYTES);
    }
  });

  it('never grows a smaller job tighter than 4× nor looser than 10×', () => {
    expect(heapGrowingPercent(49_999, 400 * MB)).toBe(300);
    expect(heapGrowingPercent(1, 1 * MB)).toBe(900);
    expect(heapGrowingPercent(1, 0)).toBe(900);
  });
});
