/**
 * The rules of a job's status that the server, the command line and the page
 * all apply: when a store has ended, what status its stores give the job, and
 * what a failed store's error reads when it recorded none.
 */
import type { JobStatus, StoreError, StoreStatus } from '../types.js';

/** The statuses a store ends in: it changes no more (until a retry reopens it). */
export const FINISHED_STORE_STATUSES: ReadonlySet<StoreStatus> = new Set([
  'completed',
  'failed',
  'skipped',
]);

/** What a failed store's error reads when it recorded none (a results file of an older imgjob). */
export const FAILED_STORE_ERROR = 'failed';

/** The error of a store ended by a cancel (`DELETE /jobs/<id>`, the page's Cancel button). */
export const CANCELLED = 'cancelled';

/** A failed store's error, in words. */
export function storeErrorText(error: string | null | undefined): string {
  return error ?? FAILED_STORE_ERROR;
}

/** `ongoing` while a store is pending or running; then `failed` if any failed. */
export function jobStatusOf(stores: readonly { readonly status: StoreStatus }[]): JobStatus {
  if (stores.some((store) => !FINISHED_STORE_STATUSES.has(store.status))) return 'ongoing';
  return stores.some((store) => store.status === 'failed') ? 'failed' : 'completed';
}

/** The Retail Pulse error list: one entry per failed store, in manifest order. */
export function storeErrors(
  stores: readonly {
    readonly store_id: string;
    readonly status: StoreStatus;
    readonly error?: string;
  }[],
): StoreError[] {
  return stores
    .filter((store) => store.status === 'failed')
    .map((store) => ({ store_id: store.store_id, error: storeErrorText(store.error) }));
}
