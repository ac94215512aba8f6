import type { Ora } from 'ora';

import { isTerminal } from './paint.js';
import { formatBytes, formatDuration } from './render.js';
import type { RunningJob } from '../run/run-jobs.js';

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
};

/** Live counts of a run on stderr: only when stderr is a terminal. */
export class Progress {
  #spinner: Ora | undefined;
  readonly #stream: NodeJS.WriteStream | undefined;
  #jobs: readonly RunningJob[] = [];
  #timer: NodeJS.Timeout | undefined;
  #started = 0;
  #baseline = { worked: 0, bytes: 0 };

  private constructor(spinner: Ora | undefined, stream: NodeJS.WriteStream | undefined) {
    this.#spinner = spinner;
    this.#stream = stream;
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
    if (!enabled) return new Progress(undefined, undefined);
    const { default: ora } = await import('ora');
    return new Progress(
      ora({ stream, text: 'reading manifests…', discardStdin: false, color: color && 'cyan' }),
      stream,
    );
  }

  /** Every job is prepared: from now on the counts are live. */
  start(jobs: readonly RunningJob[]): void {
    this.#jobs = jobs;
    this.#started = performance.now();
    // Work recorded by an earlier run must not inflate this run's rates.
    const now = this.figures();
    this.#baseline = { worked: now.worked, bytes: now.bytes };
    if (!this.#spinner) return;
    this.#timer = setInterval(() => {
      if (this.#spinner) this.#spinner.text = renderProgress(this.figures());
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
    };
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

/**
 * e.g. `stores 3/10 (4 running) · images 120/400 · 2 failed · 35.2 img/s ·
 * 4.1 MB/s · ETA 8s`. The ETA is over the pending images at this run's rate
 * of real work (images downloaded), so skipped images neither count as work
 * done nor as work left.
 */
export function renderProgress(figures: ProgressFigures): string {
  const { seconds } = figures;
  const rate = seconds > 0 ? figures.worked / seconds : 0;
  const byteRate = seconds > 0 ? figures.bytes / seconds : 0;
  const running = figures.storesRunning > 0 ? ` (${figures.storesRunning} running)` : '';
  const failures = figures.failed > 0 ? ` · ${figures.failed} failed` : '';
  const eta =
    rate > 0 && figures.pending > 0 ? ` · ETA ${formatDuration(figures.pending / rate)}` : '';
  return (
    `stores ${figures.storesFinished}/${figures.stores}${running} · ` +
    `images ${figures.settled}/${figures.images}${failures} · ` +
    `${rate.toFixed(1)} img/s · ${formatBytes(byteRate)}/s${eta}`
  );
}
