/**
 * Scraping a `/metrics` endpoint in the tests: every scrape goes through
 * `promtool check metrics` (Prometheus' own parser and linter; Debian's
 * `prometheus` package), then through a small reader of the text format for
 * the values. Under CI=true a missing promtool fails the test.
 *
 * ```ts
 * const first = await scrape(url);
 * const second = await scrape(url);
 * expectCountersRose(first, second);
 * expect(second.value('imgjob_images_total', { status: 'done' })).toBe(11);
 * ```
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import { expect } from 'vitest';

import type { ResultsDocument } from '../../src/types.js';

export type Scrape = {
  readonly text: string;
  /** `name{a="x",b="y"}` (labels sorted) → value. */
  readonly samples: ReadonlyMap<string, number>;
  /** Metric family → its `# TYPE`. */
  readonly types: ReadonlyMap<string, string>;
  /** One sample's value; undefined when the scrape does not have it. */
  value(name: string, labels?: Readonly<Record<string, string>>): number | undefined;
};

/** The promtool binary, or undefined where it is missing (outside CI: promtool checks are skipped). */
export function promtoolPath(): string | undefined {
  for (const candidate of ['/usr/bin/promtool', '/usr/local/bin/promtool']) {
    if (existsSync(candidate)) return candidate;
  }
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (path) return path;
  if (process.env.CI === 'true') {
    throw new Error(
      'promtool is missing: the metrics tests check every scrape with it (apt-get install -y prometheus)',
    );
  }
  return undefined;
}

const PROMTOOL = promtoolPath();

/** GETs `url`, checks the answer with promtool and reads its samples. */
export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  if (PROMTOOL) {
    // Throws with promtool's complaint when the exposition is malformed or breaks the naming rules.
    execFileSync(PROMTOOL, ['check', 'metrics'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
  }
  return parseExposition(text);
}

/** Reads the Prometheus text format: `# TYPE` lines and samples (no timestamps are sent). */
export function parseExposition(text: string): Scrape {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) types.set(type[1], type[2]);
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample?.[1] || sample[3] === undefined) throw new Error(`not a sample line: ${line}`);
    const labels = Object.fromEntries(
      [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map(
        (match) => [match[1] ?? '', match[2] ?? ''],
      ),
    );
    samples.set(keyOf(sample[1], labels), Number(sample[3]));
  }
  return {
    text,
    samples,
    types,
    value: (name, labels = {}) => samples.get(keyOf(name, labels)),
  };
}

/** Every counter sample and histogram bucket, sum and count of `before` is at least as high in `after`. */
export function expectCountersRose(before: Scrape, after: Scrape): void {
  let checked = 0;
  for (const [key, value] of before.samples) {
    const family = familyOf(key, before.types);
    const type = family === undefined ? undefined : before.types.get(family);
    if (type !== 'counter' && type !== 'histogram') continue;
    expect(after.samples.get(key), `${key} went from ${value} to`).toBeGreaterThanOrEqual(value);
    checked++;
  }
  expect(checked).toBeGreaterThan(20);
}

/** What the imgjob_* counters must say about a job whose results this process produced. */
export function expectImagesOf(scraped: Scrape, documents: readonly ResultsDocument[]): void {
  const images = documents.flatMap((document) => document.stores.flatMap((store) => store.images));
  const done = images.filter((image) => image.status === 'done');
  for (const status of ['done', 'failed', 'skipped'] as const) {
    expect(scraped.value('imgjob_images_total', { status }), status).toBe(
      images.filter((image) => image.status === status).length,
    );
  }
  expect(scraped.value('imgjob_image_bytes_total')).toBe(
    done.reduce((sum, image) => sum + image.bytes, 0),
  );
  expect(scraped.value('imgjob_gpu_seconds_total')).toBeCloseTo(
    done.reduce((sum, image) => sum + image.gpu_ms, 0) / 1000,
    6,
  );
  // Every image downloaded once (done or failed), none skipped.
  expect(scraped.value('imgjob_download_duration_seconds_count')).toBe(
    images.filter((image) => image.status === 'done' || image.status === 'failed').length,
  );
}

function keyOf(name: string, labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([label, value]) => `${label}="${value}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
}

function familyOf(key: string, types: ReadonlyMap<string, string>): string | undefined {
  const name = key.split('{')[0] ?? '';
  if (types.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return types.get(base) === 'histogram' ? base : undefined;
}
