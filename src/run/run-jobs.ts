import { resolveRunOptions } from '../engine/run-options.js';
import { admitJobs } from './admission.js';
import { runAdmitted } from './orchestration.js';
import type { JobReport, ResolvedRequest, RunRequest } from './request.js';

export type { JobReport, RunningJob, RunRequest } from './request.js';

/**
 * The programmatic front door: reads and checks every input before any
 * download (bad input throws an InputError and writes nothing), then runs all
 * jobs at once over one shared store limit and keeps their results files.
 */
export async function runJobs(given: RunRequest): Promise<JobReport[]> {
  const request: ResolvedRequest = { ...given, options: resolveRunOptions(given.options) };
  const admitted = await admitJobs(request);
  try {
    injectedInternalError();
    return await runAdmitted(admitted, request);
  } finally {
    admitted.release();
  }
}

/**
 * Test seam, documented in README "Durability": `IMGJOB_TEST_INTERNAL_ERROR=1`
 * throws a plain Error once the jobs are prepared, as a bug would, so a test
 * can see how the CLI reports one (exit 70, no stack unless asked).
 */
function injectedInternalError(): void {
  if (process.env.IMGJOB_TEST_INTERNAL_ERROR === '1') {
    throw new Error('injected internal error (IMGJOB_TEST_INTERNAL_ERROR=1)');
  }
}
