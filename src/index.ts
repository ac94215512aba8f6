// The programmatic API of imgjob: re-exports only, no side effects.
export { runJobs, type JobReport, type RunRequest, type RunningJob } from './run.js';
export {
  Controller,
  runController,
  type ControllerOptions,
  type PreparedJob,
} from './controller.js';
export { runJob, type JobDeps, type JobOutcome, type ScheduleStore } from './job.js';
export { runStore, type ImageSink, type StoreDeps, type StoreOutcome } from './store.js';
export { processImage, type FetchImage, type ProcessDeps } from './process-image.js';
export { createDownloader, type Downloader, type DownloaderOptions } from './download.js';
export { parseManifest, readManifest } from './manifest.js';
export { startServer } from './serve/server.js';
export { parseStoreMaster, readStoreMaster } from './store-master.js';
export { JobState, jobStatusOf, storeErrors, type JournalEntry } from './job-state.js';
export { loadResults } from './results.js';
export { ResultsWriter } from './results-writer.js';
export { statusDocument, renderStoreTable, renderSummary } from './report.js';
export { createGpuDelayPicker, parseGpuDelay, realSleep, type Sleep } from './gpu.js';
export * from './errors.js';
export type * from './types.js';
