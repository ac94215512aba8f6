/**
 * What the dashboard last told its clients about one job, to send only what
 * changed: store statuses and image results, compared by status (an image
 * changes status once; a store's error comes with its status).
 */
import type { JobDelta } from '../../shared/api-shapes.js';
import type { ImageResult, ResultsDocument, StoreStatus } from '../../types.js';

/** The changes of one job since the previous look: a `job` event but for its sample. */
type JobChanges = Omit<JobDelta, 'sample'>;

export class JobWatch {
  #stores: { status: StoreStatus; error: string | undefined }[];
  #images: ImageResult['status'][][];
  #finished: boolean;

  constructor(document: ResultsDocument) {
    this.#stores = document.stores.map((store) => ({ status: store.status, error: store.error }));
    this.#images = document.stores.map((store) => store.images.map((image) => image.status));
    this.#finished = document.status !== 'ongoing';
  }

  /** Nothing more can change (until a restart resumes it or a retry reopens it: each starts a new watch). */
  get finished(): boolean {
    return this.#finished;
  }

  /** The changes in `document`, or undefined when there are none. */
  diff(document: ResultsDocument): JobChanges | undefined {
    const stores: JobChanges['stores'][number][] = [];
    const images: JobChanges['images'][number][] = [];
    document.stores.forEach((store, s) => {
      const known = this.#stores[s];
      if (known?.status !== store.status || known.error !== store.error) {
        stores.push({
          s,
          status: store.status,
          ...(store.error === undefined ? {} : { error: store.error }),
        });
        this.#stores[s] = { status: store.status, error: store.error };
      }
      const statuses = (this.#images[s] ??= []);
      store.images.forEach((image, i) => {
        if (statuses[i] === image.status) return;
        statuses[i] = image.status;
        images.push({ s, i, r: image });
      });
    });
    this.#finished = document.status !== 'ongoing';
    if (stores.length === 0 && images.length === 0) return undefined;
    return {
      job_id: document.job_id,
      status: document.status,
      counts: document.counts,
      updated_at: document.updated_at,
      stores,
      images,
    };
  }
}
