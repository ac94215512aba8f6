/**
 * The URLs of a job's images, by their place in the job (store after
 * store): a view over each store's own list, so a job keeps each URL once,
 * in its input, and its results point there.
 */
import { UrlList } from '../utils/url-list.js';
import type { ImageUrls } from '../types.js';

export class JobUrls {
  readonly #stores: readonly ImageUrls[];
  /** Where each store's images start, and (last) their total. */
  readonly #first: Uint32Array;
  /** The store of the last lookup: readers mostly go image after image. */
  #store = 0;

  constructor(stores: readonly ImageUrls[]) {
    this.#stores = stores;
    this.#first = new Uint32Array(stores.length + 1);
    stores.forEach((urls, store) => {
      this.#first[store + 1] = (this.#first[store] as number) + urls.length;
    });
  }

  get length(): number {
    return this.#first[this.#stores.length] as number;
  }

  /** The URL of image `image` of the job. */
  url(image: number): string {
    const store = this.#storeOf(image);
    return this.#stores[store]?.at(image - (this.#first[store] as number)) as string;
  }

  /** Whether image `image`'s URL is `url`, without making the string when it can. */
  holds(image: number, url: string): boolean {
    const store = this.#storeOf(image);
    const urls = this.#stores[store];
    const index = image - (this.#first[store] as number);
    return urls instanceof UrlList ? urls.holds(index, url) : urls?.at(index) === url;
  }

  #storeOf(image: number): number {
    const first = this.#first;
    let store = this.#store;
    if (image >= (first[store] as number) && image < (first[store + 1] as number)) return store;
    if (image >= (first[store + 1] as number) && image < (first[store + 2] ?? 0)) store++;
    else {
      // Binary search: the last store that starts at or before `image` and is not empty.
      let low = 0;
      let high = this.#stores.length - 1;
      while (low < high) {
        const middle = (low + high + 1) >>> 1;
        if ((first[middle] as number) <= image) low = middle;
        else high = middle - 1;
      }
      store = low;
    }
    this.#store = store;
    return store;
  }
}
