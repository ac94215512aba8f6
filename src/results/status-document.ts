import type { ResultsDocument, StatusDocument } from '../types.js';

/** The Retail Pulse status document of a job (`error` only when failed). */
export function statusDocument(
  document: Pick<ResultsDocument, 'status' | 'job_id' | 'error'>,
): StatusDocument {
  return {
    status: document.status,
    job_id: document.job_id,
    ...(document.status === 'failed' ? { error: document.error ?? [] } : {}),
  };
}
