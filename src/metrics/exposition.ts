/**
 * The Prometheus registry of a process: the tallies, the state gauges and
 * Node's default process metrics, read at scrape time. This is the module
 * that loads prom-client; commands import it only when metrics are asked for.
 * docs/metrics.md lists every metric.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client';

import type { BucketTally } from './bucket-tally.js';
import type { StateCounts } from './state-counts.js';
import { IMAGE_STATUSES, type Tallies } from './tallies.js';

export type QueueCounts = {
  /** Stores in the shared queue by BullMQ state. */
  readonly stores: StateCounts;
  /** Workers whose presence is current. */
  readonly workers: number;
};

/** Where the gauges read their values, at scrape time. */
export type MetricSources = {
  /** Stores of the jobs this process runs (run, serve) or the stores it runs (worker). */
  readonly stores?: (() => StateCounts) | undefined;
  /** Jobs by state (run: its jobs; serve: its database's). */
  readonly jobs?: (() => StateCounts) | undefined;
  /** The shared queue (with --queue, and on workers). */
  readonly queue?: (() => Promise<QueueCounts>) | undefined;
};

export const STORE_STATES = ['pending', 'ongoing', 'completed', 'failed', 'skipped'] as const;
export const JOB_STATES = ['ongoing', 'completed', 'failed'] as const;
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** prom-client's default gauges whose `_total` suffix says counter. */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** A scrape waits this long for Redis, then shows the queue gauges without values. */
const QUEUE_WAIT_MS = 2_000;

export function createRegistry(tallies: Tallies, sources: MetricSources = {}): Registry {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  // Gauges with a counter's suffix: promtool refuses them, and a dashboard
  // would rate() them. sum(nodejs_active_handles) etc. say the same.
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);

  new Counter({
    name: 'imgjob_images_total',
    help: 'Image results this process produced, by status (done, failed, skipped after a failed image).',
    labelNames: ['status'],
    registers,
    collect() {
      this.reset();
      for (const status of IMAGE_STATUSES) this.inc({ status }, tallies.images[status]);
    },
  });
  new Counter({
    name: 'imgjob_image_bytes_total',
    help: 'Bytes read from the network for the images done.',
    registers,
    collect() {
      this.reset();
      this.inc(tallies.bytes);
    },
  });
  new Counter({
    name: 'imgjob_gpu_seconds_total',
    help: 'Simulated GPU time given to the images done, in seconds.',
    registers,
    collect() {
      this.reset();
      this.inc(tallies.gpuSeconds);
    },
  });
  new Counter({
    name: 'imgjob_retries_total',
    help: 'Download attempts retried, by the error code of the attempt that failed.',
    labelNames: ['code'],
    registers,
    collect() {
      this.reset();
      for (const [code, count] of tallies.retries) this.inc({ code }, count);
    },
  });
  registry.registerMetric(
    histogramOf(
      'imgjob_download_duration_seconds',
      'Time to download and measure one image, retries included, whatever the outcome.',
      tallies.downloads,
    ),
  );
  registry.registerMetric(
    histogramOf(
      'imgjob_results_save_seconds',
      'Time to save the results: a snapshot of a results file (run), a database write (serve).',
      tallies.saves,
    ),
  );
  const { stores, jobs, queue } = sources;
  if (stores) {
    stateGauge(
      registers,
      'imgjob_stores',
      'Stores by state, of the jobs this process runs.',
      STORE_STATES,
      stores,
    );
  }
  if (jobs) stateGauge(registers, 'imgjob_jobs', 'Jobs by state.', JOB_STATES, jobs);
  if (queue) queueGauges(registers, queue);
  return registry;
}

function stateGauge(
  registers: Registry[],
  name: string,
  help: string,
  states: readonly string[],
  read: () => StateCounts,
): void {
  new Gauge({
    name,
    help,
    labelNames: ['state'],
    registers,
    collect() {
      const counts = read();
      for (const state of states) this.set({ state }, counts[state] ?? 0);
    },
  });
}

function queueGauges(registers: Registry[], read: () => Promise<QueueCounts>): void {
  // Both gauges of one scrape share one read of Redis.
  let reading: Promise<QueueCounts | undefined> | undefined;
  const once = (): Promise<QueueCounts | undefined> =>
    (reading ??= withinTime(read(), QUEUE_WAIT_MS).finally(() => {
      reading = undefined;
    }));
  new Gauge({
    name: 'imgjob_queue_stores',
    help: 'Stores in the shared Redis queue, by state (waiting, active, delayed, failed).',
    labelNames: ['state'],
    registers,
    async collect() {
      const counts = await once();
      // Redis did not answer: no value rather than a made-up zero.
      this.reset();
      if (counts === undefined) return;
      for (const state of QUEUE_STATES) this.set({ state }, counts.stores[state] ?? 0);
    },
  });
  new Gauge({
    name: 'imgjob_workers',
    help: 'imgjob worker processes connected to the shared queue.',
    registers,
    async collect() {
      const counts = await once();
      this.reset();
      if (counts !== undefined) this.set(counts.workers);
    },
  });
}

/**
 * A histogram whose counts live in a BucketTally. prom-client's registry
 * reads every metric through `get()` (its Metric contract); its Histogram
 * class cannot be given counts kept elsewhere, so this is a metric of that
 * contract built on the tally.
 */
function histogramOf(name: string, help: string, tally: BucketTally): Metric {
  const base = { name, help, type: 'histogram', aggregator: 'sum' } as const;
  const metric = {
    ...base,
    get: () => {
      const buckets = tally.cumulative().map((value, index) => ({
        value,
        labels: { le: tally.bounds[index] ?? 0 },
        metricName: `${name}_bucket`,
      }));
      return Promise.resolve({
        ...base,
        values: [
          ...buckets,
          { value: tally.count, labels: { le: '+Inf' }, metricName: `${name}_bucket` },
          { value: tally.sum, labels: {}, metricName: `${name}_sum` },
          { value: tally.count, labels: {}, metricName: `${name}_count` },
        ],
      });
    },
  };
  return metric as unknown as Metric;
}

async function withinTime<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
    timer.unref();
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
