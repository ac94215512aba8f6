/**
 * The dashboard's entry. Two ways in:
 * - served by `imgjob serve`: the jobs list and job pages, live;
 * - inside an HTML report (`imgjob report --html`): one job page from the
 *   data embedded in the file, with no request anywhere.
 */
import { el, replaceChildren } from './dom.js';
import { JobPage, jobView } from './job-view.js';
import { jobsView } from './jobs-view.js';
import { Live, type ConnectionState } from './live.js';
import type { ResultsDocument } from './model.js';
import { startRouter, type NavigateOptions } from './router.js';

type ReportData = { readonly generated_at: string; readonly documents: readonly ResultsDocument[] };

const main = document.getElementById('main');
const embedded = document.getElementById('imgjob-data');
if (main && embedded) showReport(main, JSON.parse(embedded.textContent) as ReportData);
else if (main) startApp(main);

function showReport(root: HTMLElement, data: ReportData): void {
  for (const document of data.documents) {
    const section = el('section', { class: 'job-report' });
    root.append(section);
    new JobPage(section, { report: { generatedAt: data.generated_at } }).show(document, []);
  }
}

function startApp(root: HTMLElement): void {
  const connection = document.getElementById('conn');
  const toggle = document.getElementById('live-toggle');
  const labels: Record<ConnectionState, string> = {
    live: 'Live',
    connecting: 'Connecting…',
    polling: 'Polling',
    paused: 'Paused',
    offline: 'Server unreachable',
  };
  const live = new Live((state) => {
    if (!connection) return;
    connection.textContent = labels[state];
    connection.className = `conn ${state}`;
  });
  toggle?.addEventListener('click', () => {
    if (live.paused) live.resume();
    else live.pause();
    toggle.setAttribute('aria-pressed', String(!live.paused));
    toggle.textContent = live.paused ? 'Resume live updates' : 'Pause live updates';
  });

  startRouter((options: NavigateOptions) => {
    const match = /^\/jobs\/([^/]+)\/?$/.exec(location.pathname);
    const container = el('div');
    replaceChildren(root, container);
    if (match) {
      live.show(jobView(container, decodeURIComponent(match[1] ?? ''), () => live.reload()));
    } else {
      const params = new URLSearchParams(location.search);
      document.title = 'imgjob · jobs';
      live.show(
        jobsView(
          container,
          {
            status: params.get('status') ?? '',
            q: params.get('q') ?? '',
            before: params.get('before') ?? '',
          },
          () => !live.paused,
        ),
      );
    }
    if (options.keepFocus) {
      document.getElementById('search')?.focus();
      const search = document.getElementById('search');
      if (search instanceof HTMLInputElement)
        search.setSelectionRange(search.value.length, search.value.length);
    } else root.focus({ preventScroll: true });
  });
}
