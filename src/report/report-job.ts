/**
 * What a report reads of a job: its head and its stores, in memory (`run
 * --report`, which has just written them) or streamed from its results file
 * (`imgjob report`), so that a report of ten million images holds one store
 * at a time rather than the whole job.
 */
import type { ResultsHead } from '../results/results-stream.js';
import type { ResultsDocument, StoreResult } from '../types.js';

export type ReportJob = {
  /** The job's head; a streamed job's is final once `stores()` was read through (its journal replayed). */
  readonly head: ResultsHead;
  /** Every store in order, afresh at each call. */
  stores(): Iterable<StoreResult> | AsyncIterable<StoreResult>;
};

/** A job already in memory. */
export function reportJobOf(document: ResultsDocument): ReportJob {
  return { head: document, stores: () => document.stores };
}

/** The whole document (the HTML report embeds it): every store in memory. */
export async function wholeDocument(job: ReportJob): Promise<ResultsDocument> {
  const stores: StoreResult[] = [];
  for await (const store of job.stores()) stores.push(store);
  return { ...job.head, stores };
}
