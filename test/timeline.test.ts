/**
 * A job's timeline: JobState samples its progress about once a second per
 * run, and durations, rates and the chart are read over the runs only — the
 * idle time before a resume, and images skipped by a cancel, count as no work.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';

import { JobState } from '../src/results/job-state.js';
import { paceOf } from '../src/web/model.js';
import { activeSamples, activeSeconds } from '../src/shared/timeline.js';
import { doneImage, jobInputOfGrid, resultOptions } from './helpers/job-input.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('the timeline JobState records', () => {
  it('samples done and failed images at most once a second, one list per run', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const input = jobInputOfGrid(2, 3);
    const state = JobState.create(input, 'job', resultOptions(), new Date());
    state.startRun();
    const record = (s: number, i: number): void => {
      state.recordImage(s, i, doneImage(input.stores[s]?.urls.at(i) ?? ''));
    };
    record(0, 0);
    vi.advanceTimersByTime(300);
    record(0, 1); // within the second: replaces the sample before
    vi.advanceTimersByTime(1000);
    record(0, 2);
    state.recordImage(1, 0, { url: 'x', status: 'skipped' }); // no work: no sample
    expect(state.toDocument().timeline).toEqual([
      [
        [1_000_000, 0],
        [1_000_300, 2],
        [1_001_300, 3],
      ],
    ]);
    // Taken up again an hour later: a new run, the hour in no run.
    vi.advanceTimersByTime(3_600_000);
    const resumed = JobState.fromDocument(state.toDocument());
    resumed.startRun();
    vi.advanceTimersByTime(2000);
    resumed.recordImage(1, 1, doneImage(input.stores[1]?.urls.at(1) ?? ''));
    const timeline = resumed.toDocument().timeline;
    expect(timeline).toHaveLength(2);
    expect(activeSeconds(timeline)).toBeCloseTo(1.3 + 2, 5);
    expect(activeSamples(timeline).map(([t, n]) => [t - 1_000_000, n])).toEqual([
      [0, 0],
      [300, 2],
      [1300, 3],
      [1300, 3],
      [3300, 4],
    ]);
  });
});

describe('the pace the page shows', () => {
  const counts = { stores: 2, images: 100, done: 10, failed: 10, skipped: 60, pending: 20 };
  it('counts done and failed images only, over the runs when there is a timeline', () => {
    const created = '2026-01-01T00:00:00.000Z';
    const start = Date.parse(created);
    const pace = paceOf(
      {
        counts,
        status: 'ongoing',
        created_at: created,
        timeline: [
          [
            [start, 0],
            [start + 5000, 10],
          ],
          [[start + 3_600_000, 10]],
        ],
      },
      undefined,
      start + 3_605_000,
    );
    // 20 images worked over 10 s of runs (not 1 h), the 60 skipped no work.
    expect(pace.seconds).toBe(10);
    expect(pace.perSecond).toBe(2);
    expect(pace.eta).toBe(10);
  });

  it('without a timeline: from the start to the end', () => {
    const pace = paceOf(
      { counts, status: 'failed', created_at: '2026-01-01T00:00:00.000Z' },
      '2026-01-01T00:00:40.000Z',
      0,
    );
    expect(pace).toMatchObject({ seconds: 40, perSecond: 0.5, eta: 0 });
  });
});
