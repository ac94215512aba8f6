/**
 * Throughput over time as an inline SVG: images finished per second between
 * samples, drawn as an area. Sizes come from the viewBox; colours from CSS.
 */
import { el, svg } from './dom.js';
import * as format from '../shared/format.js';
import type { ProgressSample } from '../types.js';

const W = 900;
const H = 200;
const PAD = { left: 84, right: 12, top: 24, bottom: 30 };

export function throughputChart(samples: readonly ProgressSample[], caption: string): HTMLElement {
  const points = rates(samples);
  const figure = el('figure', { class: 'chart' });
  if (points.length < 2) {
    figure.append(
      el('p', { class: 'note' }, 'Not enough samples yet.'),
      el('figcaption', {}, caption),
    );
    return figure;
  }
  const t0 = points[0]?.[0] ?? 0;
  const t1 = points.at(-1)?.[0] ?? t0 + 1;
  const top = niceMax(Math.max(...points.map((p) => p[1])));
  const x = (t: number): number =>
    PAD.left + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number): number => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const line = points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const area = `${x(t0).toFixed(1)},${y(0)} ${line} ${x(t1).toFixed(1)},${y(0)}`;
  const peak = Math.max(...points.map((p) => p[1]));
  const graphic = svg(
    'svg',
    {
      viewBox: `0 0 ${W} ${H}`,
      role: 'img',
      'aria-label': `Throughput: up to ${format.rate(peak)} images per second over ${format.duration((t1 - t0) / 1000)}`,
    },
    svg('line', { class: 'axis', x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0) }),
    svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(top), y2: y(top) }),
    svg('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(top / 2), y2: y(top / 2) }),
    svg(
      'text',
      { class: 'tick', x: PAD.left - 6, y: y(top) + 4, 'text-anchor': 'end' },
      format.rate(top),
    ),
    svg(
      'text',
      { class: 'tick', x: PAD.left - 6, y: y(top / 2) + 4, 'text-anchor': 'end' },
      format.rate(top / 2),
    ),
    svg('text', { class: 'tick', x: PAD.left - 6, y: y(0) + 4, 'text-anchor': 'end' }, '0'),
    svg('text', { class: 'tick', x: PAD.left, y: H - 8 }, '0s'),
    svg(
      'text',
      { class: 'tick', x: W - PAD.right, y: H - 8, 'text-anchor': 'end' },
      format.duration((t1 - t0) / 1000),
    ),
    svg('polygon', { class: 'area', points: area }),
    svg('polyline', { class: 'line', points: line }),
  );
  figure.append(graphic, el('figcaption', {}, caption));
  return figure;
}

/** Most points drawn: samples closer than span/BUCKETS are merged, which also smooths the rate. */
const BUCKETS = 60;

/** `[time, images/s]` from cumulative samples: the rate over each bucket, at its end. */
function rates(samples: readonly ProgressSample[]): [number, number][] {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last[0] <= first[0]) return [];
  const step = (last[0] - first[0]) / BUCKETS;
  const kept: ProgressSample[] = [first];
  for (const sample of samples) {
    const previous = kept.at(-1) ?? first;
    if (sample[0] - previous[0] >= step || sample === last) kept.push(sample);
  }
  const points: [number, number][] = [];
  for (let i = 1; i < kept.length; i++) {
    const [ta, na] = kept[i - 1] ?? first;
    const [tb, nb] = kept[i] ?? first;
    if (tb <= ta) continue;
    const perSecond = Math.max(0, ((nb - na) * 1000) / (tb - ta));
    // The first step's rate from the start: the line begins where the work did, not at 0.
    if (points.length === 0) points.push([ta, perSecond]);
    points.push([tb, perSecond]);
  }
  return points;
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}
