/**
 * The rows of the data reports (Parquet, JSON Lines): one per image of
 * every job, in store and image order, the same columns in both. Each
 * column says how to read its value and what Parquet type holds it; a
 * value the image does not have (the width of a failed one) is null.
 */
import type { ResultsHead } from '../results/results-stream.js';
import type { ImageResult, StoreResult } from '../types.js';
import type { ReportJob } from './report-job.js';

/** Where a row's values come from. `index` counts from 1 within the store, as imgjob's messages do. */
export type ImageAt = {
  readonly document: ResultsHead;
  readonly store: StoreResult;
  readonly image: ImageResult;
  readonly index: number;
};

type Value = string | number | null;

export type ImageColumn = {
  readonly name: string;
  /** The Parquet type: INT64 for values that may pass 2^31 (bytes, a perimeter). */
  readonly type: 'STRING' | 'INT32' | 'INT64';
  readonly nullable: boolean;
  /**
   * Parquet min/max statistics (a reader skips row groups by them): not for
   * URLs and error texts, whose bounds filter nothing and cost a third of
   * the write.
   */
  readonly statistics?: false;
  readonly of: (at: ImageAt) => Value;
};

const done = ({ image }: ImageAt) => (image.status === 'done' ? image : undefined);
const failed = ({ image }: ImageAt) => (image.status === 'failed' ? image : undefined);

export const IMAGE_COLUMNS: readonly ImageColumn[] = [
  { name: 'job_id', type: 'STRING', nullable: false, of: (at) => at.document.job_id },
  { name: 'store_id', type: 'STRING', nullable: false, of: (at) => at.store.store_id },
  { name: 'store_status', type: 'STRING', nullable: false, of: (at) => at.store.status },
  { name: 'image_index', type: 'INT32', nullable: false, of: (at) => at.index },
  { name: 'url', type: 'STRING', nullable: false, statistics: false, of: (at) => at.image.url },
  { name: 'status', type: 'STRING', nullable: false, of: (at) => at.image.status },
  { name: 'width', type: 'INT32', nullable: true, of: (at) => done(at)?.width ?? null },
  { name: 'height', type: 'INT32', nullable: true, of: (at) => done(at)?.height ?? null },
  { name: 'perimeter', type: 'INT64', nullable: true, of: (at) => done(at)?.perimeter ?? null },
  { name: 'type', type: 'STRING', nullable: true, of: (at) => done(at)?.type ?? null },
  { name: 'bytes', type: 'INT64', nullable: true, of: (at) => done(at)?.bytes ?? null },
  { name: 'error_code', type: 'STRING', nullable: true, of: (at) => failed(at)?.code ?? null },
  {
    name: 'error',
    type: 'STRING',
    nullable: true,
    statistics: false,
    of: (at) => failed(at)?.error ?? null,
  },
  { name: 'gpu_ms', type: 'INT32', nullable: true, of: (at) => done(at)?.gpu_ms ?? null },
  {
    name: 'download_ms',
    type: 'INT32',
    nullable: true,
    of: (at) => done(at)?.download_ms ?? null,
  },
];

/** Every image of the jobs, in order, a store at a time (a million rows are read one by one). */
export async function* imagesOf(jobs: readonly ReportJob[]): AsyncGenerator<ImageAt> {
  for (const job of jobs) {
    for await (const store of job.stores()) {
      let index = 0;
      for (const image of store.images) {
        index++;
        yield { document: job.head, store, image, index };
      }
    }
  }
}
