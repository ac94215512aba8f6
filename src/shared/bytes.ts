/**
 * Byte counts in words, one convention everywhere (terminal, error messages,
 * the dashboard): decimal units, 1 KB = 1000 B, as download tools and disk
 * makers count them. `812 B`, `4.2 KB`, `37.5 MB`, `1.20 GB`.
 *
 * `up` rounds up at the shown precision, for a room estimate that must not
 * fall short ("needs about 4.3 KB free").
 */
export function formatBytes(bytes: number, rounding: 'nearest' | 'up' = 'nearest'): string {
  const round = rounding === 'up' ? Math.ceil : Math.round;
  const shown = (value: number, digits: number): string => {
    const scale = 10 ** digits;
    return (round(value * scale) / scale).toFixed(digits);
  };
  if (bytes < 1000) return `${shown(bytes, 0)} B`;
  if (bytes < 1e6) return `${shown(bytes / 1e3, 1)} KB`;
  if (bytes < 1e9) return `${shown(bytes / 1e6, 1)} MB`;
  return `${shown(bytes / 1e9, 2)} GB`;
}
