/**
 * Search over a job's stores and their errors. On a server the search runs
 * there, a page at a time (a 100k-store job is never filtered in the
 * browser); in a report, over the data the file holds, the same way.
 */
import type { StorePage, StoreRow } from '../shared/api-shapes.js';
import { el, replaceChildren, scrollTable } from './dom.js';
import * as format from '../shared/format.js';
import { badge } from './jobs-view.js';
import type { ResultsDocument } from './model.js';

/** One page of the stores matching `q`, after the store at `after`. */
export type StoreSource = (q: string, after: number | undefined) => Promise<StorePage>;

const PAGE = 50;
const TYPING_PAUSE_MS = 250;

export function storeSearch(source: StoreSource): HTMLElement {
  const input = el('input', {
    type: 'search',
    id: 'store-search',
    placeholder: 'store id or error text',
    autocomplete: 'off',
  });
  const results = el('div', { class: 'search-results', 'aria-live': 'polite' });
  const section = el(
    'section',
    { class: 'store-search', 'aria-labelledby': 'h-search' },
    el('h2', { id: 'h-search' }, 'Search stores and errors'),
    el('label', { class: 'search', for: 'store-search' }, 'Find ', input),
    results,
  );
  let timer: number | undefined;
  // Answers can come back out of order: only the latest search is shown.
  let latest = 0;
  const search = async (q: string, after: number | undefined, body?: HTMLTableSectionElement) => {
    const asked = ++latest;
    let page: StorePage;
    try {
      page = await source(q, after);
    } catch (error) {
      if (asked === latest)
        replaceChildren(results, el('p', { class: 'bad' }, (error as Error).message));
      return;
    }
    if (asked !== latest) return;
    const rows = body ?? el('tbody');
    rows.append(...page.stores.map(storeRow));
    const more =
      page.next_after === null
        ? null
        : el('button', { type: 'button', class: 'button more' }, 'More');
    more?.addEventListener('click', () => {
      more.disabled = true;
      void search(q, page.next_after ?? undefined, rows);
    });
    replaceChildren(
      results,
      el(
        'p',
        { class: 'note match-count' },
        `${format.count(page.total)} ${page.total === 1 ? 'store matches' : 'stores match'}`,
      ),
      page.total === 0 ? null : table(rows),
      more,
    );
  };
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    const q = input.value.trim();
    if (q === '') {
      latest++;
      replaceChildren(results);
      return;
    }
    timer = window.setTimeout(() => void search(q, undefined), TYPING_PAUSE_MS);
  });
  return section;
}

/** The same search over a results document held by the page (a report). */
export function localStoreSource(document: Pick<ResultsDocument, 'stores'>): StoreSource {
  return (q, after) => {
    const needle = q.toLowerCase();
    const matching: StoreRow[] = [];
    document.stores.forEach((store, index) => {
      if (
        !store.store_id.toLowerCase().includes(needle) &&
        !(store.error ?? '').toLowerCase().includes(needle)
      )
        return;
      const counts = { images: store.images.length, done: 0, failed: 0, skipped: 0, pending: 0 };
      for (const image of store.images) counts[image.status]++;
      matching.push({
        index,
        store_id: store.store_id,
        status: store.status,
        ...(store.error === undefined ? {} : { error: store.error }),
        counts,
      });
    });
    const from = after === undefined ? 0 : matching.findIndex((row) => row.index > after);
    const stores = from < 0 ? [] : matching.slice(from, from + PAGE);
    const last = stores.at(-1);
    const more = from >= 0 && from + PAGE < matching.length;
    return Promise.resolve({
      total: matching.length,
      stores,
      next_after: more && last ? last.index : null,
    });
  };
}

function table(body: HTMLTableSectionElement): HTMLElement {
  return scrollTable(
    'search-table',
    ['Store', 'Status', 'Done / failed / skipped / total', 'Error'],
    body,
  );
}

function storeRow(store: StoreRow): HTMLElement {
  const { counts } = store;
  return el(
    'tr',
    { 'data-store': store.store_id },
    el('th', { scope: 'row', class: 'store-id', 'data-label': 'Store' }, store.store_id),
    el('td', { 'data-label': 'Status' }, badge(store.status)),
    el(
      'td',
      { class: 'num', 'data-label': 'Done / failed / skipped / total' },
      `${counts.done} / ${counts.failed} / ${counts.skipped} / ${counts.images}`,
    ),
    el('td', { class: 'error', 'data-label': 'Error' }, store.error ?? ''),
  );
}
