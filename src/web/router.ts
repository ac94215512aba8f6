/**
 * Moving between the jobs list and a job page without a reload: links to
 * the page's own paths go through history, and the app renders the new path.
 */
export type NavigateOptions = { readonly replace?: boolean; readonly keepFocus?: boolean };

let onRoute: ((options: NavigateOptions) => void) | undefined;

export function startRouter(handler: (options: NavigateOptions) => void): void {
  onRoute = handler;
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element | null)?.closest('a');
    if (!link || link.target || link.hasAttribute('download')) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || !isAppPath(url.pathname)) return;
    event.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => {
    handler({});
  });
  handler({});
}

export function navigate(url: string, options: NavigateOptions = {}): void {
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  onRoute?.(options);
}

function isAppPath(path: string): boolean {
  return path === '/' || /^\/jobs\/[^/]+\/?$/.test(path);
}
