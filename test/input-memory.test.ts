/**
 * What a parsed job costs per image in memory, and the compact URL list
 * that keeps it low. Heap is measured after full collections (deterministic
 * for a given build), never by time.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';

import { parseManifest } from '../src/input/manifest.js';
import { JobState } from '../src/results/job-state.js';
import { UrlList } from '../src/utils/url-list.js';
import { resultOptions } from './helpers/job-input.js';

describe('UrlList', () => {
  it('gives back each string by position across chunks, and tells a string without making it', () => {
    const values = Array.from({ length: 2_500 }, (_, i) => `https://h/${'é'.repeat(i % 3)}${i}`);
    const list = new UrlList();
    for (const value of values) list.push(value);
    // Before sealing (the open chunk) and after.
    expect(list.at(2_400)).toBe(values[2_400]);
    list.seal();
    expect(list).toHaveLength(2_500);
    for (const i of [0, 1, 1_023, 1_024, 1_025, 2_047, 2_048, 2_499]) {
      expect(list.at(i)).toBe(values[i]);
      expect(list.holds(i, values[i] as string)).toBe(true);
      expect(list.holds(i, `${values[i]}x`)).toBe(false);
      expect(list.holds(i, (values[i] as string).slice(0, -1))).toBe(false);
    }
    expect([list.at(-1), list.at(2_500), list.at(1.5)]).toEqual([undefined, undefined, undefined]);
    expect([...list]).toEqual(values);
    expect(JSON.parse(JSON.stringify({ urls: list }))).toEqual({ urls: values });
    expect(() => {
      list.push('https://h/late');
    }).toThrow(/sealed/);
  });
});

describe('a parsed job of 200,000 images', () => {
  it('holds about its URLs’ characters per image, input and results together', () => {
    const gc = exposedGc();
    const urlOf = (n: number): string => `http://127.0.0.1:8080/thumb/${n}.png`;
    const manifestOf = (stores: number): string => {
      const visits = [];
      for (let store = 0, n = 0; store < stores; store++) {
        for (let visit = 0; visit < 5; visit++) {
          const image_url = Array.from({ length: 20 }, () => urlOf(n++));
          visits.push({ store_id: `S${store}`, image_url, visit_time: '2024-11-15T08:00:00Z' });
        }
      }
      return JSON.stringify({ count: visits.length, visits });
    };
    // Once small first: the code it compiles is not the job's.
    JobState.create(parseManifest(manifestOf(20), 'm.json'), 'job', resultOptions(), new Date());
    const before = heapAfterGc(gc);
    const input = parseManifest(manifestOf(2_000), 'm.json');
    const state = JobState.create(input, 'job', resultOptions(), new Date());
    const perImage = (heapAfterGc(gc) - before) / input.imageCount;
    expect(state.counts.images).toBe(200_000);
    expect(state.imageUrl(1_999, 99)).toBe(urlOf(199_999));
    // A URL here is ~35 characters. Kept as compact lists, with a store's and
    // a visit's share, an image costs ~51 bytes in all (measured); a task
    // object and a string per image cost ~120.
    expect(perImage).toBeLessThan(urlOf(0).length + 30);
  });
});

/** V8's collector, which a test file may not otherwise call. */
function exposedGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
