import Table from 'cli-table3';

import type { JobSummary, ResultsHead, StoreSummary } from '../results/results-stream.js';
import { storeErrorText } from '../shared/job-rules.js';
import type { ResultsDocument, StoreResult } from '../types.js';
import { outsideText } from '../shared/outside-text.js';
import { plural } from '../utils/plural.js';
import { noColor, type Paint } from './paint.js';

export type TableOptions = {
  readonly paint?: Paint;
  /** Most store rows shown; failed stores are shown first. @default 40 */
  readonly maxRows?: number;
  /**
   * Widest a row may be, in columns: the store id and error cells are cut to
   * fit (the full text stays in the results file, in `status --json` and in
   * the list of failed stores). @default 80
   */
  readonly width?: number;
};

/** A job, whole or summed up: its head and its stores' ids, statuses and errors. */
type JobLike = ResultsHead & {
  readonly stores: readonly Pick<StoreResult, 'store_id' | 'status' | 'error'>[];
};

/** Lines a table of `rows` store rows takes: its borders, its head and the "… more" line. */
export const TABLE_CHROME_LINES = 4;

/** cli-table3's borders and padding around four cells: `│ a │ b │ c │ d │`. */
const TABLE_FRAME = 13;
const HEAD = ['store', 'images', 'status', 'error'] as const;

/**
 * The table of a job's stores: id, images done/total, state, error. A job
 * without stores has no table: '' (its summary line says it all).
 */
export function renderStoreTable(
  document: JobSummary | ResultsDocument,
  options: TableOptions = {},
): string {
  if (document.stores.length === 0) return '';
  const paint = options.paint ?? noColor;
  const maxRows = Math.max(1, options.maxRows ?? 40);
  const stores: readonly (StoreSummary | StoreResult)[] = document.stores;
  const rows = rowsToShow(stores, maxRows).map((store) => ({
    store: outsideText(store.store_id),
    images: imagesCell(store),
    status: storeStatusOf(store, document),
    error: outsideText(store.error ?? ''),
  }));
  const widths = fitColumns(rows, options.width ?? 80);
  const table = new Table({
    head: [...HEAD],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const row of rows) {
    table.push([
      // Ids of one job often share a prefix and differ at the end (S1000123,
      // S1000124): cut in the middle, so narrow rows still tell them apart.
      cutMiddle(row.store, widths.store),
      row.images,
      paintStatus(row.status, paint),
      truncate(shortenUrls(row.error, widths.error), widths.error),
    ]);
  }
  const hidden = document.stores.length - rows.length;
  const more = hidden > 0 ? `\n${paint.dim(`… ${plural(hidden, 'more store')}`)}` : '';
  return `${table.toString()}${more}`;
}

type Row = { store: string; images: string; status: string; error: string };

// The images and status cells are short and kept whole; what is left of the
// width goes to the store id (up to its length; when the error must be cut,
// all but five columns or half, whichever is more) and the error gets the
// rest: a cut error is still in the list of failed stores, a cut id in no row.
function fitColumns(rows: readonly Row[], width: number): { store: number; error: number } {
  const longest = (pick: (row: Row) => string, head: string): number =>
    Math.max(head.length, ...rows.map((row) => pick(row).length));
  const fixed = longest((row) => row.images, 'images') + longest((row) => row.status, 'status');
  const room = Math.max(10, width - TABLE_FRAME - fixed);
  const storeWanted = longest((row) => row.store, 'store');
  const errorWanted = longest((row) => row.error, 'error');
  const store = Math.max(
    5,
    Math.min(storeWanted, Math.max(room - errorWanted, Math.ceil(room / 2), room - 5)),
  );
  return { store, error: Math.max(5, room - store) };
}

/**
 * The order counts of stores are told in, everywhere: what ended, then what
 * is left. A store cut off by a signal reads `interrupted`.
 */
const STORE_ORDER = [
  'completed',
  'failed',
  'skipped',
  'ongoing',
  'interrupted',
  'pending',
] as const;
export type ShownStoreStatus = (typeof STORE_ORDER)[number];

/**
 * A store as a reader should see it: a store still `ongoing` in the file of
 * a run that a signal stopped is not running any more, it was interrupted.
 */
export function storeStatusOf(
  store: Pick<StoreResult, 'status'>,
  document: Pick<ResultsHead, 'interrupted'>,
): ShownStoreStatus {
  return store.status === 'ongoing' && document.interrupted === true ? 'interrupted' : store.status;
}

/** One line that says where the job stands; `interrupted` when a signal stopped it. */
export function renderSummary(document: JobLike, paint: Paint = noColor): string {
  const { counts } = document;
  const stores = countBy(document.stores.map((store) => storeStatusOf(store, document)));
  const storeText = STORE_ORDER.filter((status) => stores[status] !== undefined)
    .map((status) => `${stores[status] ?? 0} ${status}`)
    .join(', ');
  const images = [
    `${counts.done} done`,
    counts.failed > 0 ? paint.red(`${counts.failed} failed`) : `${counts.failed} failed`,
    `${counts.skipped} skipped`,
    ...(counts.pending > 0 ? [`${counts.pending} pending`] : []),
  ].join(', ');
  const status =
    document.status === 'ongoing' && document.interrupted
      ? paint.yellow('interrupted')
      : paintStatus(document.status, paint);
  return `job ${outsideText(document.job_id)}: ${status} — ${plural(counts.images, 'image')} (${images}) in ${plural(counts.stores, 'store')} (${storeText || 'none'})`;
}

/**
 * The failed stores of a job, one line each, in full. Read from the stores
 * rather than the status document's `error`, which only a finished job has:
 * an interrupted job still shows the stores that failed before the signal.
 */
export function renderErrors(document: JobLike, paint: Paint = noColor): string {
  return document.stores
    .filter((store) => store.status === 'failed')
    .map(
      (store) =>
        `${paint.red('✗')} ${outsideText(store.store_id)}: ${outsideText(storeErrorText(store.error))}`,
    )
    .join('\n');
}

// Manifest order; when the table must be cut, failed stores are kept first,
// then running ones, since they are what a reader of a long job looks for.
function rowsToShow<Store extends Pick<StoreResult, 'status'>>(
  stores: readonly Store[],
  maxRows: number,
): Store[] {
  if (stores.length <= maxRows) return [...stores];
  const rank = (store: Store): number =>
    store.status === 'failed' ? 0 : store.status === 'ongoing' ? 1 : 2;
  const shown = new Set(
    stores
      .map((store, index) => ({ store, index }))
      .sort((a, b) => rank(a.store) - rank(b.store) || a.index - b.index)
      .slice(0, maxRows)
      .map(({ store }) => store),
  );
  return stores.filter((store) => shown.has(store));
}

/** Done of all: a summed-up store has the counts, a whole one its images. */
function imagesCell(store: StoreSummary | StoreResult): string {
  if (typeof store.images === 'number') return `${(store as StoreSummary).done}/${store.images}`;
  const done = store.images.filter((image) => image.status === 'done').length;
  return `${done}/${store.images.length}`;
}

function paintStatus(status: string, paint: Paint): string {
  if (status === 'failed') return paint.red(status);
  if (status === 'completed') return paint.green(status);
  if (status === 'ongoing' || status === 'interrupted') return paint.yellow(status);
  return paint.dim(status);
}

// In a narrow cell, what failed matters more than the host it was on:
// `image 2 of 4 (http://host/a/b.jpg): HTTP 404` keeps `…/b.jpg` only.
function shortenUrls(text: string, width: number): string {
  if (text.length <= width) return text;
  return text.replace(/\bhttps?:\/\/\S+\/([^/\s)]+)/g, '…/$1');
}

/** `S1000…0124`: the start and the end kept, the middle cut. */
export function cutMiddle(text: string, width: number): string {
  const line = text.replace(/\s+/g, ' ');
  if (line.length <= width) return line;
  if (width <= 1) return '…';
  const tail = Math.floor((width - 1) / 2);
  return `${line.slice(0, width - 1 - tail)}…${line.slice(line.length - tail)}`;
}

function truncate(text: string, width: number): string {
  // One line per row: a newline in an error would break the table too.
  const line = text.replace(/\s+/g, ' ');
  return line.length <= width ? line : `${line.slice(0, width - 1)}…`;
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** `4.2s`, `37s`, `3m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  if (seconds < 9.95) return `${seconds.toFixed(1)}s`;
  // Round once, then split: rounding the parts alone gives "1m60s".
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  if (minutes < 60) return `${minutes}m${String(whole % 60).padStart(2, '0')}s`;
  const wholeMinutes = Math.round(seconds / 60);
  return `${Math.floor(wholeMinutes / 60)}h${String(wholeMinutes % 60).padStart(2, '0')}m`;
}
