/**
 * A job's progress over time (`ResultsDocument.timeline`: one list of
 * samples per run) read as active time: the runs end to end, the idle time
 * between a stop and a resume left out. Shared by the page, the HTML report
 * and the JUnit report. The timeline comes from a file: whatever is not a
 * sample is ignored.
 */
import type { ProgressSample, ResultsDocument } from '../types.js';

type Timeline = NonNullable<ResultsDocument['timeline']>;

/**
 * Seconds the job was worked on; `now` extends the last run of a job still
 * running. Undefined without a timeline (a file from an older imgjob).
 */
export function activeSeconds(timeline: Timeline | undefined, now?: number): number | undefined {
  const runs = validRuns(timeline);
  if (runs.length === 0) return undefined;
  let ms = 0;
  runs.forEach((run, index) => {
    const start = run[0]?.[0] ?? 0;
    const end = index === runs.length - 1 && now !== undefined ? now : (run.at(-1)?.[0] ?? start);
    ms += Math.max(0, end - start);
  });
  return ms / 1000;
}

/**
 * The samples of every run on one time line, each run moved back to start
 * where the one before ended: a chart of them shows work, not waiting.
 */
export function activeSamples(timeline: Timeline | undefined): ProgressSample[] {
  const samples: ProgressSample[] = [];
  let shift = 0;
  for (const run of validRuns(timeline)) {
    const start = run[0]?.[0] ?? 0;
    const previous = samples.at(-1);
    shift = previous === undefined ? 0 : start - previous[0];
    for (const [t, n] of run) samples.push([t - shift, n]);
  }
  return samples;
}

function validRuns(timeline: Timeline | undefined): ProgressSample[][] {
  if (!Array.isArray(timeline)) return [];
  return timeline
    .map((run) =>
      Array.isArray(run)
        ? run.filter(
            (sample): sample is ProgressSample =>
              Array.isArray(sample) && Number.isFinite(sample[0]) && Number.isFinite(sample[1]),
          )
        : [],
    )
    .filter((run) => run.length > 0);
}
