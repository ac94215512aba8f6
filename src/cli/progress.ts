import type { Ora } from 'ora';

import { formatDuration } from './render.js';
import type { RunningJob } from '../run/run-jobs.js';

/** Live counts of a run on stderr: only when stderr is a terminal. */
export class Progress {
  readonly #spinner: Ora | undefined;
  #jobs: readonly RunningJob[] = [];
  #timer: NodeJS.Timeout | undefined;
  #started = 0;
  #baseline = 0;

  private constructor(spinner: Ora | undefined) {
    this.#spinner = spinner;
    this.#spinner?.start();
  }

  /** Progress on `stream`; the spinner library loads only when it will be shown. */
  static async create(stream: NodeJS.WriteStream, enabled: boolean): Promise<Progress> {
    if (!enabled) return new Progress(undefined);
    const { default: ora } = await import('ora');
    return new Progress(ora({ stream, text: 'reading manifests…', discardStdin: false }));
  }

  /** Every job is prepared: from now on the counts are live. */
  start(jobs: readonly RunningJob[]): void {
    this.#jobs = jobs;
    this.#started = performance.now();
    // Images recorded by an earlier run must not inflate this run's rate.
    this.#baseline = this.#processed();
    if (!this.#spinner) return;
    this.#timer = setInterval(() => {
      if (this.#spinner) this.#spinner.text = this.text();
    }, 200);
    this.#timer.unref();
  }

  /** e.g. `stores 3/10 · images 120/400 · 2 failed · 35.2 img/s · ETA 8s` */
  text(): string {
    let storesDone = 0;
    let stores = 0;
    let images = 0;
    let failed = 0;
    for (const job of this.#jobs) {
      const counts = job.state.counts;
      stores += counts.stores;
      images += counts.images;
      failed += counts.failed;
      for (let store = 0; store < counts.stores; store++) {
        if (job.state.isStoreFinished(store)) storesDone++;
      }
    }
    const processed = this.#processed();
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? (processed - this.#baseline) / seconds : 0;
    const left = images - processed;
    const eta = rate > 0 && left > 0 ? ` · ETA ${formatDuration(left / rate)}` : '';
    const failures = failed > 0 ? ` · ${failed} failed` : '';
    return `stores ${storesDone}/${stores} · images ${processed}/${images}${failures} · ${rate.toFixed(1)} img/s${eta}`;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#spinner?.stop();
  }

  #processed(): number {
    let processed = 0;
    for (const job of this.#jobs) processed += job.state.counts.images - job.state.counts.pending;
    return processed;
  }
}
