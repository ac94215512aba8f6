/**
 * A job page: summary, throughput, the failed stores first with their
 * errors, then every store with its progress and its strip of image cells.
 * The same code renders the live page (updated by `job` events) and the
 * self-contained HTML report (data from the file, no request at all).
 */
import * as api from './api.js';
import { CANCELLED, storeErrorText } from '../shared/job-rules.js';
import { activeSamples } from '../shared/timeline.js';
import { attachCellTips, strip } from './cells.js';
import { throughputChart } from './chart.js';
import { el, replaceChildren, scrollTable } from './dom.js';
import { errorGroups, renderErrorGroups } from './error-groups.js';
import { JobActions } from './job-actions.js';
import { localStoreSource, storeSearch, type StoreSource } from './store-search.js';
import * as format from '../shared/format.js';
import { badge, progress } from './jobs-view.js';
import type { LiveView } from './live.js';
import {
  applyDelta,
  inFlightIndex,
  liveJob,
  paceOf,
  storesDone,
  type LiveJob,
  type ResultsDocument,
  type ProgressSample,
} from './model.js';

/** Stores shown before "Show all". */
const FIRST_STORES = 100;

export type JobPageOptions = {
  /** A report: no links back to a server, and a note on when it was written. */
  readonly report?: { readonly generatedAt: string } | undefined;
  /** The buttons that act on the job (a live page only). */
  readonly actions?: JobActions | undefined;
  /** Where the search looks: the server, or (by default) the document the page holds. */
  readonly stores?: StoreSource | undefined;
};

export class JobPage {
  readonly #root: HTMLElement;
  readonly #options: JobPageOptions;
  #job: LiveJob | undefined;
  #samples: ProgressSample[] = [];
  #showAll = false;
  #frame: number | undefined;
  /** Stores changed since the last drawing; `all` redraws everything. */
  #dirty: Set<number> | 'all' = 'all';
  readonly #rows = new Map<number, HTMLTableRowElement>();
  readonly #summary = el('section', { class: 'summary', 'aria-label': 'Summary' });
  readonly #chart = el('section', { class: 'throughput', 'aria-labelledby': 'h-throughput' });
  readonly #failed = el('section', { class: 'failed-stores', 'aria-labelledby': 'h-failed' });
  readonly #errors = el('section', { class: 'errors', 'aria-labelledby': 'h-errors' });
  readonly #search = el('div');
  readonly #stores = el('section', { class: 'stores', 'aria-labelledby': 'h-stores' });
  readonly #title = el('h1');

  constructor(root: HTMLElement, options: JobPageOptions = {}) {
    this.#root = root;
    this.#options = options;
    if (!options.report) {
      // Duration and ETA move with the clock, also while no event comes (a stalled job).
      const timer = window.setInterval(() => {
        if (!root.isConnected) window.clearInterval(timer);
        else if (this.#job?.status === 'ongoing') this.#renderSummary(this.#job);
      }, 5000);
    }
    replaceChildren(
      root,
      options.report ? null : el('p', { class: 'crumbs' }, el('a', { href: '/' }, '← All jobs')),
      this.#title,
      options.actions?.element,
      this.#summary,
      this.#chart,
      this.#errors,
      this.#failed,
      this.#search,
      this.#stores,
    );
    attachCellTips(root, (s, i) => {
      const store = this.#job?.stores[s];
      const image = store?.images[i];
      if (!store || !image) return undefined;
      return { image, state: inFlightIndex(store) === i ? 'inflight' : image.status };
    });
  }

  show(document: ResultsDocument, samples: readonly ProgressSample[]): void {
    this.#job = liveJob(document);
    replaceChildren(this.#search, storeSearch(this.#options.stores ?? localStoreSource(this.#job)));
    this.#samples = [...samples];
    this.#dirty = 'all';
    this.#render();
  }

  /** A `job` event: applied now, drawn at the next frame. */
  update(delta: Parameters<typeof applyDelta>[1]): void {
    if (!this.#job || delta.job_id !== this.#job.job_id) return;
    const touched = applyDelta(this.#job, delta);
    if (this.#dirty !== 'all') for (const s of touched.stores) this.#dirty.add(s);
    if (delta.sample) this.#samples.push(delta.sample);
    if (this.#frame !== undefined) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = undefined;
      this.#render();
    });
  }

  #render(): void {
    const job = this.#job;
    if (!job) return;
    // Re-rendering replaces the cells: keep the keyboard where it was.
    const focused =
      document.activeElement instanceof HTMLElement ? document.activeElement.dataset : undefined;
    const focusKey = focused?.s !== undefined ? [focused.s, focused.i] : undefined;
    const status = shownStatus(job);
    replaceChildren(this.#title, `Job ${format.jobLabel(job.job_id)} `, badge(status));
    document.title = `imgjob · job ${format.jobLabel(job.job_id)} · ${status}`;
    this.#options.actions?.update(job.status);
    this.#renderSummary(job);
    this.#renderChart(job);
    const dirty = this.#dirty;
    this.#dirty = new Set();
    if (dirty === 'all') {
      this.#renderFailed(job);
      this.#renderStores(job);
    } else {
      // Only the rows of the stores that changed: a page of thousands of cells stays light.
      if ([...dirty].some((s) => job.stores[s]?.status === 'failed')) this.#renderFailed(job);
      for (const s of dirty) {
        const row = this.#rows.get(s);
        const store = job.stores[s];
        if (!row || !store) continue;
        const fresh = this.#storeRow(store, s);
        row.replaceWith(fresh);
        this.#rows.set(s, fresh);
      }
    }
    if (focusKey) {
      const [s, i] = focusKey;
      const cell = this.#root.querySelector<HTMLElement>(
        `.cell[data-s="${s}"][data-i="${i ?? ''}"]`,
      );
      if (cell) {
        for (const sibling of cell.parentElement?.children ?? [])
          (sibling as HTMLElement).tabIndex = -1;
        cell.tabIndex = 0;
        cell.focus();
      }
    }
  }

  #renderSummary(job: LiveJob): void {
    const { counts } = job;
    const ended = job.status === 'ongoing' ? undefined : (job.finished_at ?? job.updated_at);
    const now = this.#options.report ? Date.parse(job.updated_at) : Date.now();
    const pace = paceOf(job, ended, now);
    // No image finished for 10 s: the average rate says nothing about the end.
    const lastChange = this.#samples.at(-1)?.[0];
    const stalled =
      !this.#options.report &&
      job.status === 'ongoing' &&
      lastChange !== undefined &&
      now - lastChange > 10_000;
    // One div per pair (allowed in a dl): the grid keeps each name over its value.
    const item = (name: string, value: string | Node, cls = ''): HTMLElement[] => [
      el('div', {}, el('dt', {}, name), el('dd', { class: cls }, value)),
    ];
    const options = job.options;
    const report = this.#options.report;
    replaceChildren(
      this.#summary,
      report && job.status === 'ongoing'
        ? el(
            'p',
            { class: 'banner ongoing', role: 'note' },
            'This job was still ongoing when the report was written: the numbers are those of that moment.',
          )
        : null,
      progress({ ...counts, total: counts.images }),
      el(
        'dl',
        {},
        ...item('Images done', format.count(counts.done), 'num done'),
        ...item(
          'Failed',
          format.count(counts.failed),
          counts.failed > 0 ? 'num failed bad' : 'num failed',
        ),
        ...item('Skipped', format.count(counts.skipped), 'num skipped'),
        ...item('Pending', format.count(counts.pending), 'num pending'),
        ...item('Total images', format.count(counts.images), 'num total'),
        ...item(
          'Stores done',
          `${format.count(storesDone(job.stores))} / ${format.count(counts.stores)}`,
          'num stores',
        ),
        ...item('Started', format.time(job.created_at)),
        ...item(
          job.status === 'ongoing' ? 'Updated' : 'Finished',
          format.time(ended ?? job.updated_at),
        ),
        ...item('Duration', format.duration(pace.seconds), 'num'),
        ...item('Images/s', format.rate(pace.perSecond), 'num'),
        ...item(
          'ETA',
          job.status !== 'ongoing' ? '–' : stalled ? 'stalled' : format.duration(pace.eta),
          'num',
        ),
        ...item(
          'GPU delay',
          `${options.gpu_delay} ms${options.seed === null ? '' : ` (seed ${options.seed})`}`,
        ),
      ),
      report
        ? el(
            'p',
            { class: 'note' },
            `Report written ${format.time(report.generatedAt)} from ${job.manifest_source}.`,
          )
        : null,
    );
  }

  #renderChart(job: LiveJob): void {
    let samples: readonly ProgressSample[] = this.#samples;
    let caption = 'Images done or failed per second, as this server saw the job run.';
    const recorded = activeSamples(job.timeline);
    if (samples.length < 2 && recorded.length >= 2) {
      // A report, or a job that ran before this server started: the times its run recorded.
      samples = recorded;
      caption =
        (job.timeline?.length ?? 0) > 1
          ? 'Images done or failed per second while the job ran (the pauses between its runs left out).'
          : 'Images done or failed per second while the job ran.';
    } else if (samples.length < 2 && job.status !== 'ongoing') {
      // No samples at all (a results file of an older imgjob): the average.
      const end = Date.parse(job.finished_at ?? job.updated_at);
      const start = Date.parse(job.created_at);
      const worked = job.counts.done + job.counts.failed;
      samples = [
        [start, 0],
        [start + (end - start) / 2, worked / 2],
        [end, worked],
      ];
      caption = 'Average images per second over the run (no samples over time were recorded).';
    }
    replaceChildren(
      this.#chart,
      el('h2', { id: 'h-throughput' }, 'Throughput'),
      throughputChart(samples, caption),
    );
  }

  #renderFailed(job: LiveJob): void {
    renderErrorGroups(this.#errors, errorGroups(job));
    const failed = job.stores
      .map((store, s) => ({ store, s }))
      .filter(({ store }) => store.status === 'failed');
    this.#failed.hidden = failed.length === 0;
    if (failed.length === 0) return;
    replaceChildren(
      this.#failed,
      el('h2', { id: 'h-failed' }, `Failed stores (${format.count(failed.length)})`),
      el(
        'ul',
        {},
        ...failed.map(({ store, s }) =>
          el(
            'li',
            { class: 'failed-store', 'data-store': store.store_id },
            el('span', { class: 'store-id' }, store.store_id),
            el('span', { class: 'error' }, storeErrorText(store.error)),
            strip(store, s),
          ),
        ),
      ),
    );
  }

  #renderStores(job: LiveJob): void {
    const shown = this.#showAll ? job.stores : job.stores.slice(0, FIRST_STORES);
    const body = el('tbody');
    this.#rows.clear();
    shown.forEach((store, s) => {
      const row = this.#storeRow(store, s);
      this.#rows.set(s, row);
      body.append(row);
    });
    const more =
      job.stores.length > shown.length
        ? el(
            'button',
            { type: 'button', class: 'button' },
            `Show all ${format.count(job.stores.length)} stores`,
          )
        : null;
    more?.addEventListener('click', () => {
      this.#showAll = true;
      this.#dirty = 'all';
      this.#render();
    });
    replaceChildren(
      this.#stores,
      el('h2', { id: 'h-stores' }, `Stores (${format.count(job.stores.length)})`),
      el(
        'div',
        { class: 'legend', 'aria-label': 'Cell colours' },
        ...['done', 'failed', 'skipped', 'pending', 'inflight'].map((state) =>
          el(
            'span',
            { class: 'legend-item' },
            el('span', { class: `cell ${state}`, 'aria-hidden': 'true' }),
            state === 'inflight' ? 'in flight' : state,
          ),
        ),
      ),
      scrollTable(
        'store-table',
        ['Store', 'Status', 'Progress', 'Done / failed / skipped / total', 'Images'],
        body,
      ),
      more,
    );
  }

  #storeRow(store: LiveJob['stores'][number], s: number): HTMLTableRowElement {
    const counts = { done: 0, failed: 0, skipped: 0, pending: 0 };
    for (const image of store.images) counts[image.status]++;
    return el(
      'tr',
      { 'data-store': store.store_id, 'data-status': store.status },
      el('th', { scope: 'row', class: 'store-id', 'data-label': 'Store' }, store.store_id),
      el('td', { 'data-label': 'Status' }, badge(store.status)),
      el('td', { 'data-label': 'Progress' }, progress({ ...counts, total: store.images.length })),
      el(
        'td',
        { class: 'num', 'data-label': 'Done / failed / skipped / total' },
        `${counts.done} / ${counts.failed} / ${counts.skipped} / ${store.images.length}`,
      ),
      el('td', { class: 'cells', 'data-label': 'Images' }, strip(store, s)),
    );
  }
}

/** `cancelled` for a job ended by a cancel (a failed job to the API), else its status. */
function shownStatus(job: LiveJob): string {
  return job.status === 'failed' && job.stores.some((store) => store.error === CANCELLED)
    ? 'cancelled'
    : job.status;
}

/**
 * The live job page: loads the results and the samples, then follows `job`
 * events. `reload` loads it again through the live connection (Live.reload),
 * so the events that come meanwhile are applied after, not lost.
 */
export function jobView(root: HTMLElement, id: string, reload: () => Promise<void>): LiveView {
  const view: LiveView = {
    job: id,
    async load() {
      try {
        const [document, samples] = await Promise.all([api.results(id), api.timeline(id)]);
        page.show(document, samples);
      } catch (error) {
        if (!(error instanceof api.ApiError) || error.status !== 404) throw error;
        replaceChildren(
          root,
          el('p', { class: 'crumbs' }, el('a', { href: '/' }, '← All jobs')),
          el('h1', {}, 'No such job'),
          el('p', {}, error.message),
        );
      }
    },
    onJob(delta) {
      page.update(delta);
    },
  };
  // After a cancel or a retry the job is read again: a retry takes failed stores back, which events never do.
  const actions = new JobActions(id, reload);
  const page = new JobPage(root, {
    actions,
    stores: (q, after) => api.stores(id, { q, after }),
  });
  return view;
}
