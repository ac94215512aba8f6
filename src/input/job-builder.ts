/**
 * Groups checked visits into store tasks as they stream in, whatever form
 * the manifest has, and fingerprints the job. What is kept of a visit is a
 * few numbers (`VisitSpan`): its images are in its store's list already.
 * A store's URLs are one compact list (`UrlList`), not an object an image:
 * at a million images that is ~45 bytes an image instead of ~115. A store
 * of one image keeps the one-string array its visit came with: a UrlList
 * is five objects, and a 100k-store job of one image each spent most of
 * its building time and garbage collection on them.
 */
import { createHash, type Hash } from 'node:crypto';

import { jsonString } from '../utils/json-string.js';
import { UrlList } from '../utils/url-list.js';
import type { JobInput, StoreTask, Visit, VisitSpan } from '../types.js';

/**
 * A store as its visits come in. `urls` is its first visit's own array
 * until a second visit comes (then a UrlList); `finishInSlices` makes it a
 * sealed UrlList unless it holds one URL.
 */
type Building = {
  storeId: string;
  index: number;
  /** `NO_TIMES` until the store's first visit time. */
  visitTimes: string[];
  urls: readonly string[] | UrlList;
};

/** The visit times of every store without any, shared: most stores have none. */
const NO_TIMES = Object.freeze([]) as readonly string[] as string[];

export class JobBuilder {
  readonly #byId = new Map<string, Building>();
  readonly #stores: Building[] = [];
  readonly #visits: VisitSpan[] = [];
  #images = 0;

  /** Keeps `image_url` itself: the caller hands it over and never changes it. */
  add({ store_id, image_url, visit_time }: Visit): void {
    let store = this.#byId.get(store_id);
    if (store === undefined) {
      store = {
        storeId: store_id,
        index: this.#stores.length,
        visitTimes: visit_time === undefined ? NO_TIMES : [visit_time],
        urls: image_url,
      };
      this.#byId.set(store_id, store);
      this.#stores.push(store);
    } else {
      if (visit_time !== undefined) {
        if (store.visitTimes === NO_TIMES) store.visitTimes = [visit_time];
        else store.visitTimes.push(visit_time);
      }
      const urls = store.urls instanceof UrlList ? store.urls : UrlList.of(store.urls);
      for (const url of image_url) urls.push(url);
      store.urls = urls;
    }
    this.#images += image_url.length;
    this.#visits.push(
      visit_time === undefined
        ? { store: store.index, images: image_url.length }
        : { store: store.index, images: image_url.length, time: visit_time },
    );
  }

  get visitCount(): number {
    return this.#visits.length;
  }

  finish(source: string): JobInput {
    const hash = createHash('sha256');
    // Only the hashing: the text is not kept.
    const batches = this.#canonicalBatches(hash);
    while (batches.next().done !== true);
    return this.#input(source, hash.digest('hex'));
  }

  /**
   * As `finish`, with `turn()` awaited now and then (a server must answer
   * others while it takes a 16 MB manifest in), and the canonical manifest
   * text as well, in pieces of about 64 KiB: the server stores it, and
   * spelling it is the digest's cost. Joined into one string, the largest
   * submit's 16 MB held the event loop 60-75 ms.
   */
  async finishInSlices(
    source: string,
    turn: () => Promise<void> | undefined,
  ): Promise<{ readonly input: JobInput; readonly canonical: readonly string[] }> {
    const hash = createHash('sha256');
    const batches: string[] = [];
    for (const batch of this.#canonicalBatches(hash)) {
      batches.push(batch);
      await turn();
    }
    // Sealed here a store at a time: all at once, 100k stores' lists took
    // ~200 ms in one go (serve's largest submit).
    for (const store of this.#stores) {
      seal(store);
      await turn();
    }
    return { input: this.#input(source, hash.digest('hex')), canonical: batches };
  }

  /** The canonical manifest in pieces of about 64 KiB, each put into `hash` first. */
  *#canonicalBatches(hash: Hash): Generator<string> {
    // Batched: a million small updates cost more than the hashing itself.
    let batch = '';
    for (const part of canonicalParts(this.#stores, this.#visits)) {
      batch += part;
      if (batch.length >= 1 << 16) {
        hash.update(batch);
        yield batch;
        batch = '';
      }
    }
    hash.update(batch);
    yield batch;
  }

  #input(source: string, digest: string): JobInput {
    for (const store of this.#stores) seal(store);
    const stores: readonly StoreTask[] = this.#stores;
    const visits: readonly VisitSpan[] = this.#visits;
    return { source, stores, visits, digest, imageCount: this.#images };
  }
}

/** A store's URLs as the job keeps them: one URL as its array, more as a sealed compact list. */
function seal(store: Building): void {
  const { urls } = store;
  if (urls instanceof UrlList) urls.seal();
  else if (urls.length > 1) store.urls = UrlList.of(urls).seal();
}

/**
 * The job as the canonical Retail Pulse JSON: keys sorted, unknown fields
 * left out, so that reformatting the file, reordering its keys, adding
 * ignored fields or giving the same visits in another form keeps it.
 * `serve` stores this text; the job's digest is its sha256 (the same digest
 * as imgjob gave before manifests were streamed: results files still resume).
 * A field added to the visit must be added here too.
 */
export function canonicalManifest(input: Pick<JobInput, 'stores' | 'visits'>): string {
  return [...canonicalParts(input.stores, input.visits)].join('');
}

function* canonicalParts(
  stores: readonly StoreTask[],
  visits: readonly VisitSpan[],
): Generator<string> {
  yield `{"count":${visits.length},"visits":[`;
  const next = new Array<number>(stores.length).fill(0);
  for (const [i, { store, images, time }] of visits.entries()) {
    const task = stores[store] as StoreTask;
    const from = next[store] as number;
    next[store] = from + images;
    // Spelled by hand as JSON.stringify would spell the visit object: 3x faster.
    let text = i === 0 ? '{"image_url":[' : ',{"image_url":[';
    for (let k = from; k < from + images; k++) {
      text += `${k === from ? '' : ','}${jsonString(task.urls.at(k) as string)}`;
    }
    text += `],"store_id":${jsonString(task.storeId)}`;
    text += time === undefined ? '}' : `,"visit_time":${jsonString(time)}}`;
    yield text;
  }
  yield ']}';
}
