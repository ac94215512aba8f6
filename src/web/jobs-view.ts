/**
 * The jobs list: newest first, filtered by status, searched by job id or
 * store id, paged by keyset (`before` = the last id of the page before).
 * Live: rows in view update in place; a new job or a status change reloads
 * the page of the list (at most once a second).
 */
import * as api from './api.js';
import { el, replaceChildren, svg } from './dom.js';
import * as format from '../shared/format.js';
import type { LiveView } from './live.js';
import { paceOf, type JobRow, type Overview, type WorkerInfo } from './model.js';
import { navigate } from './router.js';

export type JobsQuery = { status: string; q: string; before: string };

const STATUSES = ['', 'ongoing', 'completed', 'failed'] as const;
const PAGE_SIZE = 50;

/** Runs `change` (which redraws rows) and puts the keyboard back on the same job's link. */
function withFocusKept(change: () => void): void {
  const active = document.activeElement;
  const job = active instanceof HTMLElement ? active.closest('tr')?.dataset.job : undefined;
  change();
  if (job !== undefined)
    document.querySelector<HTMLElement>(`tr[data-job="${CSS.escape(job)}"] a`)?.focus();
}

/** How often the Workers panel re-reads the workers (they change without any job changing). */
const WORKERS_POLL_MS = 3000;

/** `isLive`: false while the user paused live updates (the Workers panel waits too). */
export function jobsView(
  root: HTMLElement,
  query: JobsQuery,
  isLive: () => boolean = () => true,
): LiveView {
  const rows = new Map<string, HTMLTableRowElement>();
  let shown: Overview | undefined;
  let reloadTimer: number | undefined;
  // Durations and ETAs of running jobs move with the clock, also between events.
  const clock = window.setInterval(() => {
    if (!root.isConnected) {
      window.clearInterval(clock);
      return;
    }
    withFocusKept(() => {
      for (const job of latest.values()) {
        const row = rows.get(job.job_id);
        if (job.status !== 'ongoing' || !row) continue;
        const fresh = jobRow(job, Date.now());
        row.replaceWith(fresh);
        rows.set(job.job_id, fresh);
      }
    });
  }, 5000);
  /** The latest data of each row shown. */
  const latest = new Map<string, JobRow>();

  const search = el('input', {
    type: 'search',
    id: 'search',
    name: 'q',
    placeholder: 'Job id or store id',
    'aria-label': 'Search by job id or store id',
    autocomplete: 'off',
    value: query.q,
  });
  let typing: number | undefined;
  search.addEventListener('input', () => {
    window.clearTimeout(typing);
    typing = window.setTimeout(() => {
      navigate(listUrl({ ...query, q: search.value.trim(), before: '' }), {
        replace: true,
        keepFocus: true,
      });
    }, 250);
  });
  const form = el('form', { role: 'search', class: 'search' }, search);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    navigate(listUrl({ ...query, q: search.value.trim(), before: '' }), {
      replace: true,
      keepFocus: true,
    });
  });
  const filters = el('nav', { class: 'filters', 'aria-label': 'Filter by status' });
  const workers = el('section', { class: 'workers', hidden: true, 'aria-label': 'Workers' });
  const table = el('table', { class: 'jobs' });
  const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' });
  const note = el('p', { class: 'note', role: 'status' });
  replaceChildren(
    root,
    el('div', { class: 'toolbar' }, el('h1', {}, 'Jobs'), form, filters),
    workers,
    el('div', { class: 'scroll' }, table),
    note,
    pager,
  );

  function render(data: Overview): void {
    shown = data;
    renderFilters(data.totals);
    rows.clear();
    const head = el(
      'tr',
      {},
      ...[
        'Job',
        'Status',
        'Progress',
        'Images done / failed / total',
        'Stores',
        'Started',
        'Duration',
        'Images/s',
        'ETA',
      ].map((name) => el('th', { scope: 'col' }, name)),
    );
    const body = el('tbody');
    latest.clear();
    for (const job of data.jobs) {
      latest.set(job.job_id, job);
      const row = jobRow(job, Date.parse(data.now));
      rows.set(job.job_id, row);
      body.append(row);
    }
    replaceChildren(
      table,
      el('caption', { class: 'sr-only' }, 'Jobs, newest first'),
      el('thead', {}, head),
      body,
    );
    note.textContent =
      data.jobs.length === 0
        ? query.q || query.status
          ? 'No job matches.'
          : 'No jobs yet. Submit one: POST /api/submit/'
        : '';
    renderPager(data);
    showWorkers(data.workers);
  }

  let workersShown = '';
  let workersPoll: number | undefined;
  /** Redraws the panel only when what it shows changed: a focused link in it keeps its focus. */
  function showWorkers(list: Overview['workers']): void {
    const key = JSON.stringify(list?.map(({ last_seen: _, ...shown }) => shown) ?? null);
    if (key !== workersShown) renderWorkers(workers, list);
    waitingForWorkers = list !== undefined && !list.some((worker) => worker.lost_at === undefined);
    for (const note of table.querySelectorAll('.waiting-workers')) {
      note.textContent = waitingNote();
    }
    workersShown = key;
    if (list !== undefined) pollWorkers();
  }

  function pollWorkers(): void {
    workersPoll ??= window.setTimeout(() => {
      workersPoll = undefined;
      if (!root.isConnected) return;
      if (!isLive()) {
        pollWorkers();
        return;
      }
      api
        .overview({}, 1)
        .then((data) => {
          if (root.isConnected) showWorkers(data.workers);
        })
        .catch(() => {
          if (root.isConnected) pollWorkers();
        });
    }, WORKERS_POLL_MS);
  }

  function renderFilters(totals: Overview['totals']): void {
    replaceChildren(
      filters,
      ...STATUSES.map((status) => {
        const total = totals[status === '' ? 'all' : status];
        const link = el(
          'a',
          {
            href: listUrl({ ...query, status, before: '' }),
            class: `filter ${status || 'all'}`,
            'aria-current': query.status === status ? 'true' : undefined,
          },
          status === '' ? 'All' : capital(status),
          ' ',
          el('span', { class: 'n' }, format.count(total)),
        );
        return link;
      }),
    );
  }

  function renderPager(data: Overview): void {
    const first = query.before === '';
    replaceChildren(
      pager,
      first
        ? null
        : el('a', { href: listUrl({ ...query, before: '' }), class: 'button' }, '« Newest'),
      data.next_before === null
        ? null
        : el(
            'a',
            {
              href: listUrl({ ...query, before: String(data.next_before) }),
              class: 'button',
              rel: 'next',
            },
            'Older ›',
          ),
    );
  }

  function scheduleReload(): void {
    // At most every two seconds: under a burst of jobs every event would ask for one.
    reloadTimer ??= window.setTimeout(() => {
      reloadTimer = undefined;
      void view.load();
    }, 2000);
  }

  /** Page 1 without filter or search: the events alone keep it exact, no reload needed. */
  const plainFirstPage = query.before === '' && query.status === '' && query.q === '';

  const view: LiveView = {
    async load() {
      render(await api.overview(query, PAGE_SIZE));
    },
    onJobs(changed, more, totals) {
      const current = shown;
      if (current === undefined) return;
      if (plainFirstPage) {
        // The event carries the newest changed rows, and this page shows the
        // newest jobs: every change to it, new jobs included, is in the event.
        const byId = new Map(current.jobs.map((job) => [job.job_id, job]));
        const top = Number(current.jobs[0]?.job_id ?? 0);
        for (const job of changed) {
          const known = byId.get(job.job_id);
          if (known || Number(job.job_id) > top) byId.set(job.job_id, job);
        }
        const jobs = [...byId.values()].sort((a, b) => Number(b.job_id) - Number(a.job_id));
        const kept = jobs.slice(0, PAGE_SIZE);
        const next =
          jobs.length > PAGE_SIZE || current.next_before !== null
            ? Number(kept.at(-1)?.job_id ?? 0)
            : null;
        withFocusKept(() => {
          render({
            ...current,
            jobs: kept,
            next_before: next,
            totals: totals ?? current.totals,
            now: new Date().toISOString(),
          });
        });
        return;
      }
      let reload = more > 0;
      for (const job of changed) {
        const row = rows.get(job.job_id);
        if (row) {
          // A status change may take the row out of a filtered list.
          if (row.dataset.status !== job.status) reload = true;
          latest.set(job.job_id, job);
          const fresh = jobRow(job, Date.now());
          row.replaceWith(fresh);
          rows.set(job.job_id, fresh);
        } else if (query.before === '' && Number(job.job_id) > Number(current.jobs[0]?.job_id ?? 0))
          reload = true;
      }
      if (totals) renderFilters(totals);
      if (reload) scheduleReload();
    },
  };
  return view;
}

/** `serve --queue` with no worker on its queue: ongoing jobs say what they wait for. */
let waitingForWorkers = false;

function waitingNote(): string {
  return waitingForWorkers ? ' waiting for workers' : '';
}

function jobRow(job: JobRow, now: number): HTMLTableRowElement {
  const { counts } = job;
  const pace = paceOf(job, job.finished_at, now);
  const href = `/jobs/${encodeURIComponent(job.job_id)}`;
  const row = el(
    'tr',
    { 'data-job': job.job_id, 'data-status': job.status },
    el('th', { scope: 'row', 'data-label': 'Job' }, el('a', { href }, format.jobLabel(job.job_id))),
    el(
      'td',
      { 'data-label': 'Status' },
      badge(job.cancelled === true ? 'cancelled' : job.status),
      job.status === 'ongoing' ? el('span', { class: 'waiting-workers' }, waitingNote()) : '',
    ),
    el('td', { 'data-label': 'Progress' }, progress({ ...counts, total: counts.images })),
    el(
      'td',
      { class: 'num', 'data-label': 'Images' },
      // One child: on a phone the cell is a flex row of its label and its value.
      el(
        'span',
        {},
        el('span', { class: 'images-done' }, format.count(counts.done)),
        ' / ',
        el(
          'span',
          { class: counts.failed > 0 ? 'images-failed bad' : 'images-failed' },
          format.count(counts.failed),
        ),
        ' / ',
        el('span', { class: 'images-total' }, format.count(counts.images)),
      ),
    ),
    el(
      'td',
      { class: 'num stores', 'data-label': 'Stores' },
      `${format.count(job.stores_done)} / ${format.count(counts.stores)}`,
    ),
    el('td', { 'data-label': 'Started' }, format.time(job.created_at)),
    el('td', { class: 'num', 'data-label': 'Duration' }, format.duration(pace.seconds)),
    el('td', { class: 'num', 'data-label': 'Images/s' }, format.rate(pace.perSecond)),
    el(
      'td',
      { class: 'num', 'data-label': 'ETA' },
      job.status === 'ongoing' ? format.duration(pace.eta) : '–',
    ),
  );
  return row;
}

function renderWorkers(section: HTMLElement, workers: readonly WorkerInfo[] | undefined): void {
  section.hidden = workers === undefined;
  if (workers === undefined) return;
  const live = workers.filter((worker) => worker.lost_at === undefined);
  const lost = workers.filter((worker) => worker.lost_at !== undefined);
  replaceChildren(
    section,
    el('h2', {}, `Workers (${live.length})`),
    live.length === 0
      ? el(
          'p',
          { class: 'note', 'data-waiting': '' },
          'No worker on this queue: ongoing jobs are waiting for workers (imgjob worker --queue <url>).',
        )
      : el('ul', {}, ...live.map(workerItem)),
    lost.length === 0 ? '' : el('ul', { class: 'lost' }, ...lost.map(lostItem)),
  );
}

function storeLinks(worker: WorkerInfo): (string | HTMLElement)[] {
  return worker.running.flatMap((run, index) => [
    index === 0 ? '' : ', ',
    el(
      'a',
      { href: `/jobs/${encodeURIComponent(run.job_id)}` },
      `job ${format.jobLabel(run.job_id)}`,
    ),
    ` store ${run.store_id}`,
  ]);
}

function workerItem(worker: WorkerInfo): HTMLElement {
  const busy = worker.running.length + (worker.other_stores ?? 0);
  const runs = storeLinks(worker);
  const others = worker.other_stores
    ? `${runs.length > 0 ? ', and ' : ''}${format.count(worker.other_stores)} store(s) of other servers`
    : '';
  return el(
    'li',
    { 'data-worker': worker.id },
    el('strong', {}, worker.host ?? worker.id),
    worker.pid === undefined ? '' : ` pid ${worker.pid}`,
    worker.slots === undefined ? '' : ` · ${busy} of ${worker.slots} slots`,
    ': ',
    busy === 0 ? 'idle' : el('span', { class: 'runs' }, ...runs, others),
  );
}

/** A worker that vanished without a clean stop: its stores move to others once their locks expire. */
function lostItem(worker: WorkerInfo): HTMLElement {
  const runs = storeLinks(worker);
  return el(
    'li',
    { 'data-worker': worker.id, 'data-lost': '' },
    el('strong', {}, worker.host ?? worker.id),
    worker.pid === undefined ? '' : ` pid ${worker.pid}`,
    ` lost at ${format.time(new Date(worker.lost_at ?? 0).toISOString())}`,
    runs.length === 0
      ? ': no sign of life'
      : el(
          'span',
          { class: 'runs' },
          ': no sign of life; its stores go to other workers: ',
          ...runs,
        ),
  );
}

export function badge(status: string): HTMLElement {
  return el('span', { class: `badge ${status}` }, status);
}

/**
 * A progress bar stacked by outcome (done, failed, skipped), drawn as SVG:
 * widths as attributes, so no inline style is needed under the CSP.
 */
export function progress(counts: {
  readonly done: number;
  readonly failed: number;
  readonly skipped: number;
  readonly total: number;
}): HTMLElement {
  const { done, failed, skipped, total } = counts;
  const finished = done + failed + skipped;
  const percent = total === 0 ? 100 : Math.floor((finished / total) * 100);
  const scale = (n: number): number => (total === 0 ? 0 : (n / total) * 100);
  let x = 0;
  const rects = (
    [
      ['done', total === 0 ? 1 : done],
      ['failed', failed],
      ['skipped', skipped],
    ] as const
  ).map(([name, n]) => {
    const width = total === 0 ? 100 : scale(n);
    const rect = svg('rect', {
      class: `bar-${name}`,
      x: x.toFixed(3),
      y: 0,
      width: width.toFixed(3),
      height: 1,
    });
    x += width;
    return rect;
  });
  return el(
    'span',
    { class: 'progress' },
    svg(
      'svg',
      {
        class: 'bar',
        viewBox: '0 0 100 1',
        preserveAspectRatio: 'none',
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': total,
        'aria-valuenow': finished,
        'aria-label': `${percent}% finished: ${done} done, ${failed} failed, ${skipped} skipped of ${total}`,
      },
      svg('rect', { class: 'bar-rest', x: 0, y: 0, width: 100, height: 1 }),
      ...rects,
    ),
    el('span', { class: 'pct' }, `${percent}%`),
  );
}

export function listUrl(query: JobsQuery): string {
  const params = new URLSearchParams();
  if (query.status) params.set('status', query.status);
  if (query.q) params.set('q', query.q);
  if (query.before) params.set('before', query.before);
  const text = params.toString();
  return text ? `/?${text}` : '/';
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
