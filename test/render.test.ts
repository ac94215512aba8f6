import { describe, expect, it } from 'vitest';

import { formatDuration } from '../src/cli/render.js';

describe('formatDuration', () => {
  it.each([
    [0.04, '0.0s'],
    [4.21, '4.2s'],
    [9.96, '10s'],
    [37.2, '37s'],
    [59.6, '1m00s'],
    [119.6, '2m00s'],
    [185, '3m05s'],
    [3599.7, '1h00m'],
    [7620, '2h07m'],
  ])('formats %s s as %s, never a 60 in a place that carries', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
