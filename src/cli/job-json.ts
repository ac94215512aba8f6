import { resolve } from 'node:path';

import { statusDocument } from '../results/status-document.js';
import type { ResultsHead } from '../results/results-stream.js';
import type { Counts, StatusDocument } from '../types.js';
import { safeJson } from '../shared/outside-text.js';

/**
 * What `run --json` and `status --json` print: the Retail Pulse status
 * document (its three fields unchanged), plus the image counts and where the
 * results file is, so a CI script learns "394 done, 3 failed" without
 * opening the file.
 */
export type JobJson = StatusDocument & {
  readonly counts: Counts;
  readonly results_path: string;
};

export function jobJson(document: ResultsHead, resultsPath: string): JobJson {
  return {
    ...statusDocument(document),
    counts: document.counts,
    results_path: resolve(resultsPath),
  };
}

/**
 * The job's JSON as one line to print: the store errors came from outside,
 * so the characters JSON leaves raw (C1, bidi) are escaped too.
 */
export function jobJsonLine(document: ResultsHead, resultsPath: string): string {
  return `${safeJson(JSON.stringify(jobJson(document, resultsPath)))}\n`;
}
