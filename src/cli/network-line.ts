/**
 * What the downloads wait for, in words: the hosts paused by a Retry-After
 * and the slowest download in flight. One text for the progress line and
 * for `status`.
 */
import type { NetworkSummary, PausedHosts, SlowDownload } from '../types.js';
import { formatBytes } from '../shared/bytes.js';

/** `2 hosts paused (429)`, `3 hosts paused (2×429, 503)`; undefined when none is. */
export function pausedText(paused: PausedHosts | undefined): string | undefined {
  if (!paused || paused.total === 0) return undefined;
  const reasons = Object.entries(paused.by_status)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) =>
      count === paused.total || count === 1 ? status : `${count}×${status}`,
    )
    .join(', ');
  return `${paused.total} ${paused.total === 1 ? 'host' : 'hosts'} paused (${reasons})`;
}

/** `…/shot.jpg 12s 40 KB`: where the URL ends, how long, how much so far. */
export function slowText(slow: SlowDownload): string {
  return `${shortUrl(slow.url)} ${slow.seconds}s ${formatBytes(slow.bytes)}`;
}

/**
 * For `status` of a live job: the hosts paused and the slowest downloads,
 * one line each; empty when there is nothing to say.
 */
export function networkLines(network: NetworkSummary | undefined): string {
  const lines: string[] = [];
  const paused = pausedText(network?.paused);
  if (paused) lines.push(paused);
  const slowest = network?.slowest ?? [];
  if (slowest.length > 0) lines.push(`slowest downloads: ${slowest.map(slowText).join(', ')}`);
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * The last path segment, marked as cut: the part of a long URL that tells
 * images apart. Control characters (the URL came from outside) are shown as `?`.
 */
function shortUrl(url: string): string {
  const path = url.replace(/[?#].*$/, '');
  const name = path.slice(path.lastIndexOf('/') + 1);
  // eslint-disable-next-line no-control-regex -- these are what is replaced
  return (name === '' ? url : `…/${name}`).replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}
