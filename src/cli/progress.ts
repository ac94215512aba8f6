import type { Ora } from 'ora';

import { isTerminal } from './paint.js';
import { formatBytes } from '../shared/bytes.js';
import { formatDuration } from './render.js';
import type { RunningJob } from '../run/run-jobs.js';
import type { NetworkView } from '../download/downloader.js';
import { pausedText, slowText } from './network-line.js';

/**
 * Narrowest terminal the spinner draws on. ora wraps its line by the
 * stream's width; a pseudo-terminal that reports 0 columns (`script`,
 * `docker run -t`, `ssh -tt` from a script) sends it into an endless clear
 * loop, so progress needs a real width — at start and after every resize.
 */
export const MIN_PROGRESS_COLUMNS = 20;

export type ProgressChoice = {
  /** `--no-progress` was given. */
  readonly disabled: boolean;
  /** The environment (`CI` set turns progress off). */
  readonly env: NodeJS.ProcessEnv;
};

/** Whether live progress belongs on `stream`: a terminal of a real width, no CI, not turned off. */
export function progressWanted(stream: NodeJS.WriteStream, choice: ProgressChoice): boolean {
  if (choice.disabled || isCi(choice.env.CI)) return false;
  return isTerminal(stream) && hasRealWidth(stream);
}

/** `CI=true`, `CI=1`, any name: a CI system. `CI=false` or `CI=0` is none. */
function isCi(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function hasRealWidth(stream: NodeJS.WriteStream): boolean {
  const columns = stream.columns as number | undefined;
  return columns !== undefined && columns >= MIN_PROGRESS_COLUMNS;
}

/** What one progress line is made of, for tests and the final summary. */
export type ProgressFigures = {
  readonly stores: number;
  readonly storesFinished: number;
  readonly storesRunning: number;
  readonly images: number;
  /** Images with a result (done, failed or skipped). */
  readonly settled: number;
  readonly failed: number;
  /** Images still pending: the work left. */
  readonly pending: number;
  /** Images downloaded and measured (done or failed) by this run. */
  readonly worked: number;
  /** Bytes of the images done by this run. */
  readonly bytes: number;
  readonly seconds: number;
  /** `2 hosts paused (429)` while any is. */
  readonly paused?: string | undefined;
  /** The slowest download in flight for 5 s or more: `…/shot.jpg 12s 40 KB`. */
  readonly slowest?: string | undefined;
};

/** Live counts of a run on stderr: only when stderr is a terminal. */
export class Progress {
  #spinner: Ora | undefined;
  readonly #stream: NodeJS.WriteStream | undefined;
  #jobs: readonly RunningJob[] = [];
  #network: (() => NetworkView) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = 0;
  #baseline = { worked: 0, bytes: 0 };

  /** Where notes go, with or without a spinner. */
  readonly #out: NodeJS.WritableStream;

  private constructor(
    spinner: Ora | undefined,
    stream: NodeJS.WriteStream | undefined,
    out: NodeJS.WritableStream,
  ) {
    this.#spinner = spinner;
    this.#stream = stream;
    this.#out = out;
    this.#spinner?.start();
    // A resize comes right after Node updates `columns`, before any timer:
    // the spinner is gone before it could draw on a 0-column terminal.
    stream?.on('resize', this.#onResize);
  }

  /** Progress on `stream`; the spinner library loads only when it will be shown. */
  static async create(
    stream: NodeJS.WriteStream,
    enabled: boolean,
    color = true,
  ): Promise<Progress> {
    if (!enabled) return new Progress(undefined, undefined, stream);
    const { default: ora } = await import('ora');
    return new Progress(
      ora({ stream, text: 'reading manifests…', discardStdin: false, color: color && 'cyan' }),
      stream,
      stream,
    );
  }

  /** Every job is prepared: from now on the counts are live. */
  start(jobs: readonly RunningJob[], network?: () => NetworkView): void {
    this.#jobs = jobs;
    this.#network = network;
    this.#started = performance.now();
    // Work recorded by an earlier run must not inflate this run's rates.
    const now = this.figures();
    this.#baseline = { worked: now.worked, bytes: now.bytes };
    if (!this.#spinner) return;
    this.#timer = setInterval(() => {
      if (this.#spinner) this.#spinner.text = renderProgress(this.figures(), this.#room());
    }, 200);
    this.#timer.unref();
  }

  /** The counts as they stand, this run's work only in `worked` and `bytes`. */
  figures(): ProgressFigures {
    let stores = 0;
    let storesFinished = 0;
    let storesRunning = 0;
    let images = 0;
    let failed = 0;
    let pending = 0;
    let worked = 0;
    let bytes = 0;
    for (const job of this.#jobs) {
      const { state } = job;
      const counts = state.counts;
      stores += counts.stores;
      images += counts.images;
      failed += counts.failed;
      pending += counts.pending;
      worked += counts.done + counts.failed;
      bytes += state.bytesDone;
      for (let store = 0; store < counts.stores; store++) {
        if (state.isStoreFinished(store)) storesFinished++;
        else if (state.storeStatus(store) === 'ongoing') storesRunning++;
      }
    }
    return {
      stores,
      storesFinished,
      storesRunning,
      images,
      settled: images - pending,
      failed,
      pending,
      worked: worked - this.#baseline.worked,
      bytes: bytes - this.#baseline.bytes,
      seconds: this.#started > 0 ? (performance.now() - this.#started) / 1000 : 0,
      ...this.#networkFigures(),
    };
  }

  #networkFigures(): Pick<ProgressFigures, 'paused' | 'slowest'> {
    const view = this.#network?.();
    const slowest = view?.slowest[0];
    return {
      paused: pausedText(view?.paused),
      slowest: slowest && `slowest: ${slowText(slowest)}`,
    };
  }

  /** Columns the text may take: the spinner and its space take two, and the last column wraps on some terminals. */
  #room(): number {
    const columns = this.#stream?.columns;
    return columns === undefined ? Infinity : columns - 3;
  }

  /** A line of its own on the stream, above the spinner (which is drawn again below it). */
  note(line: string): void {
    this.#spinner?.clear();
    this.#out.write(`${line}\n`);
    this.#spinner?.render();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#stream?.off('resize', this.#onResize);
    this.#spinner?.stop();
    this.#spinner = undefined;
  }

  readonly #onResize = (): void => {
    if (this.#stream && !hasRealWidth(this.#stream)) this.stop();
  };
}

/** What a field of the progress line tells; the order is the order on the line. */
type ProgressField = {
  readonly text: string;
  /** Lower goes first when the line is too wide for the terminal. */
  readonly keep: number;
};

/**
 * e.g. `stores 3/10 (4 running) · images 120/400 · 2 failed · 35.2 img/s ·
 * 4.1 MB/s · ETA 8s`. The ETA is over the pending images at this run's rate
 * of real work (images downloaded), so skipped images neither count as work
 * done nor as work left. Given a `width`, fields are dropped, least useful
 * first (bytes/s, running stores, img/s, stores, ETA), until the line fits:
 * a wrapped line is redrawn as two and scrolls the terminal.
 */
export function renderProgress(figures: ProgressFigures, width = Infinity): string {
  const { seconds } = figures;
  const rate = seconds > 0 ? figures.worked / seconds : 0;
  const byteRate = seconds > 0 ? figures.bytes / seconds : 0;
  const fields: ProgressField[] = [
    { text: `stores ${figures.storesFinished}/${figures.stores}`, keep: 3 },
    ...(figures.storesRunning > 0 ? [{ text: `(${figures.storesRunning} running)`, keep: 1 }] : []),
    { text: `· images ${figures.settled}/${figures.images}`, keep: 6 },
    ...(figures.failed > 0 ? [{ text: `· ${figures.failed} failed`, keep: 5 }] : []),
    { text: `· ${rate.toFixed(1)} img/s`, keep: 2 },
    { text: `· ${formatBytes(byteRate)}/s`, keep: 0 },
    ...(rate > 0 && figures.pending > 0
      ? [{ text: `· ETA ${formatDuration(figures.pending / rate)}`, keep: 4 }]
      : []),
    ...(figures.paused ? [{ text: `· ${figures.paused}`, keep: 4.5 }] : []),
    ...(figures.slowest ? [{ text: `· ${figures.slowest}`, keep: 3.5 }] : []),
  ];
  const line = (): string =>
    fields
      .map((field) => field.text)
      .join(' ')
      .replace(/^· /, '');
  const byUse = [...fields].sort((a, b) => a.keep - b.keep);
  while (line().length > width && fields.length > 1) {
    const least = byUse.shift();
    fields.splice(fields.indexOf(least as ProgressField), 1);
  }
  return line();
}
