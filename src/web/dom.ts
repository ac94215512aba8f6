/**
 * Building DOM nodes safely: every string becomes a text node or an
 * attribute value, never markup. No innerHTML anywhere in the page: store
 * ids, URLs and error texts come from clients of the API. What is shown
 * (text, titles, labels) has its control and bidi characters escaped as the
 * command line escapes them, so `\u202e` cannot make a store id read
 * backwards.
 */
import { outsideText } from '../shared/outside-text.js';

export type Child = Node | string | number | null | undefined | false;
export type Props = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** `el('td', { class: 'num' }, '42')` */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: readonly Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag: string, props: Props = {}, ...children: readonly Child[]): SVGElement {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  append(node, children);
  return node;
}

export function append(parent: Node, children: readonly Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(
      typeof child === 'object' ? child : document.createTextNode(outsideText(String(child))),
    );
  }
}

/**
 * A table that scrolls sideways on a narrow screen: one header row of
 * `columns`, then `body` (a `tbody`). Each cell of a row carries its
 * column's name as `data-label`, which a phone shows beside the value.
 */
export function scrollTable(
  className: string,
  columns: readonly string[],
  body: HTMLTableSectionElement,
): HTMLElement {
  return el(
    'div',
    { class: 'scroll' },
    el(
      'table',
      { class: className },
      el('thead', {}, el('tr', {}, ...columns.map((name) => el('th', { scope: 'col' }, name)))),
      body,
    ),
  );
}

/** Replaces every child of `parent`. */
export function replaceChildren(parent: Element, ...children: readonly Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

/** Attributes a person reads (a tooltip, what a screen reader says); the rest are data. */
const SHOWN_ATTRIBUTES: ReadonlySet<string> = new Set([
  'title',
  'aria-label',
  'alt',
  'placeholder',
]);

function setProps(node: Element, props: Props): void {
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    // Attributes, not properties: no `on…` handler can be set through here.
    if (name.startsWith('on')) throw new Error(`el(): no event handlers as props (${name})`);
    const text = value === true ? '' : String(value);
    node.setAttribute(name, SHOWN_ATTRIBUTES.has(name) ? outsideText(text) : text);
  }
}
