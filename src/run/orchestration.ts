/**
 * Orchestration: runs the admitted jobs at once over one shared store limit
 * (here, or on the queue's workers), each with its results writer, and
 * reports each job as it ends. A stop (the caller's signal, a results file
 * that cannot be written, a queue given up on) reaches every job.
 */
import { Controller } from '../engine/controller.js';
import { createStoreDeps } from '../engine/job-setup.js';
import { createDownloader, type Downloader } from '../download/downloader.js';
import { logJobEnd, logJobStart, logStoreEnd } from '../log/job-events.js';
import { log } from '../log/process-log.js';
import type { QueueRunner } from '../queue/coordinator.js';
import type { JobState } from '../results/job-state.js';
import { ResultsWriter } from '../results/writer.js';
import type { NetworkSummary, ResultsDocument } from '../types.js';
import { InputError, QueueUnavailableError } from '../utils/errors.js';
import type { Admitted } from './admission.js';
import type { JobReport, ResolvedRequest } from './request.js';

export async function runAdmitted(
  admitted: Admitted,
  request: ResolvedRequest,
): Promise<JobReport[]> {
  const { options } = request;
  const { storeMaster, queueTarget } = admitted;
  // Stopped by the caller's signal, or by a results file that cannot be
  // written any more (a full disk): new images are not started, what was
  // done is saved as far as it can be.
  const stop = new AbortController();
  const forward = (): void => {
    stop.abort(request.signal?.reason);
  };
  if (request.signal?.aborted) forward();
  request.signal?.addEventListener('abort', forward, { once: true });
  const downloader = createDownloader(options);
  const network = (): NetworkSummary | undefined => networkSummary(downloader);
  const jobs = admitted.jobs.map((job) => ({
    job,
    writer: new ResultsWriter(job.resultsPath, job.state, {
      continues: job.resumed,
      queue: queueTarget?.safe,
      onFailure: (error) => {
        stop.abort(error);
      },
      onSave: request.metrics?.saved,
      network,
    }),
  }));
  // A job stuck on slow downloads or paused hosts changes no image: its
  // file is refreshed anyway, so `status` names what it waits for.
  const refresh = setInterval(() => {
    const now = network();
    if (!now?.paused && !now?.slowest) return;
    for (const { writer } of jobs) writer.refresh();
  }, NETWORK_REFRESH_MS);
  refresh.unref();
  let queue: QueueRunner | undefined;
  try {
    queue =
      queueTarget &&
      (await import('../queue/coordinator.js')).openQueueRunner(queueTarget, {
        ...options,
        storeMaster,
        onNotice: request.onQueueNotice,
        queueWaitMs: request.queueWaitMs,
        retentionMs: request.queueRetentionMs,
        waitingNoticeMs: request.queueNoticeMs,
        // Redis stayed unusable, or another coordinator holds a job: every
        // job stops and saves, then the run ends with the reason.
        onGiveUp: (error) => {
          stop.abort(error);
        },
        // A result leaves Redis only once this run's journal holds it.
        durable: async () => {
          await Promise.all(jobs.map(({ writer }) => writer.journaled()));
        },
      });
    for (const { writer } of jobs) await writer.open();
    for (const { job } of jobs) {
      logJobStart(log, job.resumed ? 'resumed' : 'submitted', job.state.jobId, job.state.counts, {
        results_path: job.resultsPath,
      });
    }
    for (const { job } of jobs) job.state.startRun();
    request.onStart?.(admitted.jobs, () => downloader.network());
    const controller = new Controller(
      { ...options, onStoreEnd: logStoreOf },
      createStoreDeps({
        fetchImage: (url, fetchSignal) => downloader.fetchImage(url, fetchSignal),
        gpuDelay: options.gpuDelay,
        seed: options.seed,
        storeMaster,
        sleep: request.sleep,
        observer: request.metrics,
      }),
    );
    const failures: unknown[] = [];
    // Each job's file is final the moment that job ends, not when the run does.
    const reports = await Promise.all(
      jobs.map(async ({ job, writer }): Promise<JobReport> => {
        const started = performance.now();
        const { interrupted } = await (queue ?? controller).submit(job, stop.signal);
        try {
          await writer.close(interrupted);
        } catch (error) {
          failures.push(error);
        }
        const { status, counts } = job.state;
        logJobEnd(
          log,
          job.state.jobId,
          { status, counts, ms: performance.now() - started, interrupted },
          { results_path: job.resultsPath },
        );
        const extra = interrupted ? { interrupted } : {};
        let document: ResultsDocument | undefined;
        return {
          source: job.input.source,
          resultsPath: job.resultsPath,
          get document(): ResultsDocument {
            document ??= job.state.toDocument(extra);
            return document;
          },
          summary: job.state.summary(extra),
          bytesDone: job.state.bytesDone,
          interrupted,
          saves: writer.stats,
        };
      }),
    );
    // A results file that could not be saved ends the run with its reason:
    // the job's status would be a lie about what is on disk.
    if (failures.length > 0) throw failures[0];
    const reason: unknown = stop.signal.reason;
    if (reason instanceof QueueUnavailableError || reason instanceof InputError) throw reason;
    return reports;
  } finally {
    request.signal?.removeEventListener('abort', forward);
    clearInterval(refresh);
    await downloader.close();
    await queue?.close();
  }
}

/** How often a job's file is saved while downloads are slow or hosts paused. */
const NETWORK_REFRESH_MS = 1_000;

/** The results file's view of the downloads: nothing before the first request. */
function networkSummary(downloader: Downloader): NetworkSummary | undefined {
  const { hosts, paused, slowest } = downloader.network();
  if (hosts.length === 0) return undefined;
  return {
    hosts,
    ...(paused.total > 0 ? { paused } : {}),
    ...(slowest.length > 0 ? { slowest } : {}),
  };
}

/** `store_finished` of a store this run ran (for JSON lines: text hides info). */
function logStoreOf(state: JobState, store: number, ms: number | undefined): void {
  if (!log.wants('info')) return;
  const { store_id, status, error, images } = state.storeView(store);
  logStoreEnd(
    log,
    `${status.padEnd(12)} store ${store_id} (job ${state.jobId.slice(0, 8)}, ${images} images)`,
    { job_id: state.jobId, store_id, status, error, images, ms },
  );
}
