/**
 * Failed images grouped by their error code, the largest group first, each
 * with its count, the stores it hit and one example message — what a
 * reader of a big failed job asks first: one cause, or many?
 */
import { el, replaceChildren, scrollTable } from './dom.js';
import * as format from '../shared/format.js';
import type { ResultsDocument } from './model.js';

export type ErrorGroup = {
  readonly code: string;
  /** Failed images with this code. */
  readonly images: number;
  /** Stores with at least one of them. */
  readonly stores: number;
  /** The first such failure, in job order. */
  readonly example: { readonly store_id: string; readonly error: string };
};

export function errorGroups(document: Pick<ResultsDocument, 'stores'>): ErrorGroup[] {
  const groups = new Map<
    string,
    { images: number; stores: Set<string>; example: ErrorGroup['example'] }
  >();
  for (const store of document.stores)
    for (const image of store.images) {
      if (image.status !== 'failed') continue;
      const code = image.code || 'E_UNKNOWN';
      const group = groups.get(code) ?? {
        images: 0,
        stores: new Set<string>(),
        example: { store_id: store.store_id, error: image.error },
      };
      group.images++;
      group.stores.add(store.store_id);
      groups.set(code, group);
    }
  return [...groups]
    .map(([code, group]) => ({
      code,
      images: group.images,
      stores: group.stores.size,
      example: group.example,
    }))
    .sort((a, b) => b.images - a.images || a.code.localeCompare(b.code));
}

/** The section: hidden when no image failed. */
export function renderErrorGroups(section: HTMLElement, groups: readonly ErrorGroup[]): void {
  section.hidden = groups.length === 0;
  if (groups.length === 0) return;
  replaceChildren(
    section,
    el('h2', { id: 'h-errors' }, `Failed images by error (${format.count(groups.length)})`),
    scrollTable(
      'error-groups',
      ['Error code', 'Images', 'Stores', 'Example'],
      el(
        'tbody',
        {},
        ...groups.map((group) =>
          el(
            'tr',
            { 'data-code': group.code },
            el('th', { scope: 'row', class: 'code', 'data-label': 'Error code' }, group.code),
            el('td', { class: 'num', 'data-label': 'Images' }, format.count(group.images)),
            el('td', { class: 'num', 'data-label': 'Stores' }, format.count(group.stores)),
            el(
              'td',
              { class: 'example', 'data-label': 'Example' },
              el('span', { class: 'store-id' }, group.example.store_id),
              ': ',
              el('span', { class: 'error' }, group.example.error),
            ),
          ),
        ),
      ),
    ),
  );
}
