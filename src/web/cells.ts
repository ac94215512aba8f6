/**
 * A store's strip of image cells, coloured by status, and the one tooltip
 * that tells a cell's URL, size, perimeter, GPU time or error — on hover
 * and on keyboard focus. Arrow keys move along a strip (one tab stop each).
 */
import { append, el, replaceChildren } from './dom.js';
import * as format from '../shared/format.js';
import { inFlightIndex, type ImageResult, type StoreResult } from './model.js';

export function strip(store: StoreResult, s: number): HTMLElement {
  const flying = inFlightIndex(store);
  const node = el('div', {
    class: 'strip',
    role: 'list',
    'aria-label': `Images of store ${store.store_id}`,
  });
  store.images.forEach((image, i) => {
    const state = i === flying ? 'inflight' : image.status;
    node.append(
      el('span', {
        class: `cell ${state}`,
        role: 'listitem',
        tabindex: i === 0 ? 0 : -1,
        'data-s': s,
        'data-i': i,
        'aria-label': `Image ${i + 1}: ${describe(image, state).join('; ')}`,
      }),
    );
  });
  return node;
}

function describe(image: ImageResult, state: string): string[] {
  const lines = [state === 'inflight' ? 'in flight' : image.status, image.url];
  if (image.status === 'done') {
    lines.push(
      `${image.width}×${image.height} px, perimeter ${format.count(image.perimeter)}`,
      `GPU ${format.count(image.gpu_ms)} ms, ${format.bytes(image.bytes)}`,
    );
  } else if (image.status === 'failed') lines.push(image.error);
  return lines;
}

/** Wires hover, focus and arrow keys for every strip under `root`. */
export function attachCellTips(
  root: HTMLElement,
  imageAt: (s: number, i: number) => { image: ImageResult; state: string } | undefined,
): void {
  const tip = tipElement();
  const show = (cell: HTMLElement): void => {
    const found = imageAt(Number(cell.dataset.s), Number(cell.dataset.i));
    if (!found) return;
    const [status = '', url = '', ...rest] = describe(found.image, found.state);
    replaceChildren(
      tip,
      el(
        'strong',
        { class: `tip-status ${found.state}` },
        `#${Number(cell.dataset.i) + 1} ${status}`,
      ),
    );
    append(tip, [
      el('span', { class: 'tip-url' }, url),
      ...rest.map((line) => el('span', {}, line)),
    ]);
    tip.hidden = false;
    const box = cell.getBoundingClientRect();
    const width = tip.offsetWidth;
    const left = Math.min(
      Math.max(8, box.left + box.width / 2 - width / 2),
      window.innerWidth - width - 8,
    );
    const below = box.bottom + 8 + tip.offsetHeight < window.innerHeight;
    // CSSOM positioning: allowed under the style-src policy, unlike style attributes.
    tip.style.left = `${left + window.scrollX}px`;
    tip.style.top = `${(below ? box.bottom + 6 : box.top - tip.offsetHeight - 6) + window.scrollY}px`;
    cell.setAttribute('aria-describedby', 'cell-tip');
  };
  const hide = (): void => {
    tip.hidden = true;
  };
  const cellOf = (target: EventTarget | null): HTMLElement | null =>
    target instanceof HTMLElement && target.classList.contains('cell') ? target : null;
  root.addEventListener('mouseover', (event) => {
    const cell = cellOf(event.target);
    if (cell) show(cell);
  });
  root.addEventListener('mouseout', (event) => {
    if (cellOf(event.target) && document.activeElement !== event.target) hide();
  });
  root.addEventListener('focusin', (event) => {
    const cell = cellOf(event.target);
    if (cell) show(cell);
  });
  root.addEventListener('focusout', hide);
  root.addEventListener('keydown', (event) => {
    const cell = cellOf(event.target);
    if (!cell) return;
    if (event.key === 'Escape') {
      hide();
      return;
    }
    const cells = [...(cell.parentElement?.children ?? [])] as HTMLElement[];
    const at = cells.indexOf(cell);
    const to =
      event.key === 'ArrowRight' || event.key === 'ArrowDown'
        ? at + 1
        : event.key === 'ArrowLeft' || event.key === 'ArrowUp'
          ? at - 1
          : event.key === 'Home'
            ? 0
            : event.key === 'End'
              ? cells.length - 1
              : undefined;
    const next = to === undefined ? undefined : cells[to];
    if (!next) return;
    event.preventDefault();
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  });
}

/** The one tooltip of the page. */
function tipElement(): HTMLElement {
  const existing = document.getElementById('cell-tip');
  if (existing) return existing;
  const tip = el('div', { class: 'tip', role: 'tooltip', id: 'cell-tip', hidden: true });
  document.body.append(tip);
  return tip;
}
