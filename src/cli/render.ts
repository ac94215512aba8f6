import Table from 'cli-table3';

import type { ResultsDocument, StoreResult } from '../types.js';

export type Paint = {
  readonly red: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly bold: (text: string) => string;
};

const identity = (text: string): string => text;
export const noColor: Paint = {
  red: identity,
  green: identity,
  yellow: identity,
  dim: identity,
  bold: identity,
};

export function ansiPaint(): Paint {
  const wrap = (open: number, close: number) => (text: string) =>
    `\u001b[${open}m${text}\u001b[${close}m`;
  return {
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    dim: wrap(2, 22),
    bold: wrap(1, 22),
  };
}

export type TableOptions = {
  readonly paint?: Paint;
  /** Most store rows shown; failed stores are shown first. @default 40 */
  readonly maxRows?: number;
  /** Longest error text in a cell. @default 80 */
  readonly errorWidth?: number;
};

/** The table of a job's stores: id, images done/total, state, error. */
export function renderStoreTable(document: ResultsDocument, options: TableOptions = {}): string {
  const paint = options.paint ?? noColor;
  const maxRows = options.maxRows ?? 40;
  const table = new Table({
    head: ['store', 'images', 'status', 'error'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const store of rowsToShow(document.stores, maxRows)) {
    table.push([
      store.store_id,
      imagesCell(store),
      paintStatus(store.status, paint),
      truncate(store.error ?? '', options.errorWidth ?? 80),
    ]);
  }
  const hidden = document.stores.length - maxRows;
  const more =
    hidden > 0 ? `\n${paint.dim(`… and ${hidden} more stores (see the results file)`)}` : '';
  return `${table.toString()}${more}`;
}

/** One line that says where the job stands. */
export function renderSummary(document: ResultsDocument, paint: Paint = noColor): string {
  const { counts } = document;
  const stores = countBy(document.stores.map((store) => store.status));
  const storeText = Object.entries(stores)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  const images = [
    `${counts.done} done`,
    counts.failed > 0 ? paint.red(`${counts.failed} failed`) : `${counts.failed} failed`,
    `${counts.skipped} skipped`,
    ...(counts.pending > 0 ? [`${counts.pending} pending`] : []),
  ].join(', ');
  return `job ${document.job_id}: ${paintStatus(document.status, paint)} — ${counts.images} images (${images}) in ${counts.stores} stores (${storeText || 'none'})`;
}

/** The failed stores of a job, one line each. */
export function renderErrors(document: ResultsDocument, paint: Paint = noColor): string {
  return (document.error ?? [])
    .map((entry) => `${paint.red('✗')} ${entry.store_id}: ${entry.error}`)
    .join('\n');
}

// Manifest order; when the table must be cut, failed stores are kept first,
// since they are what a reader of a long job looks for.
function rowsToShow(stores: readonly StoreResult[], maxRows: number): StoreResult[] {
  if (stores.length <= maxRows) return [...stores];
  const failed = stores.filter((store) => store.status === 'failed').slice(0, maxRows);
  const others = stores
    .filter((store) => store.status !== 'failed')
    .slice(0, maxRows - failed.length);
  const shown = new Set([...failed, ...others]);
  return stores.filter((store) => shown.has(store));
}

function imagesCell(store: StoreResult): string {
  const done = store.images.filter((image) => image.status === 'done').length;
  return `${done}/${store.images.length}`;
}

function paintStatus(status: string, paint: Paint): string {
  if (status === 'failed') return paint.red(status);
  if (status === 'completed') return paint.green(status);
  if (status === 'ongoing') return paint.yellow(status);
  return paint.dim(status);
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
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
