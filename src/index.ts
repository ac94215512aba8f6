// The library entry of imgjob: re-exports only. It loads no native addon and
// no terminal renderer; the server is `imgjob/serve`.
export { runJobs, type JobReport, type RunRequest, type RunningJob } from './run/run-jobs.js';
export { RUN_DEFAULTS } from './engine/run-options.js';
export { parseManifest, readManifest } from './input/manifest.js';
export { parseStoreMaster, readStoreMaster } from './input/store-master.js';
export { loadResults } from './results/reader.js';
export { statusDocument } from './results/status-document.js';
export {
  AbortedError,
  DownloadError,
  ImgjobError,
  InputError,
  ManifestError,
  type ErrorCode,
} from './utils/errors.js';
export type * from './types.js';
