/**
 * The job page's endpoints beyond reading the job:
 *
 * - `GET /api/jobs/<id>/stores?q=&status=&after=&limit=` a page of its stores, searched here;
 * - `POST /api/jobs/<id>/cancel` stops it (its unfinished stores fail "cancelled");
 * - `POST /api/jobs/<id>/retry` takes its failed stores up again.
 *
 * The two POSTs are the dashboard's own: same origin and a page token (actions.ts).
 */
import type { Database } from 'better-sqlite3';

import { STORE_STATUSES } from '../../results/job-state.js';
import type { StoreStatus } from '../../types.js';
import type { ActionResult } from '../../shared/api-shapes.js';
import type { ApiRequest, ApiResponse } from '../api.js';
import type { JobView } from '../job-view.js';
import { actionRefusal, type PageTokens } from './actions.js';
import { StoreQuery } from './store-query.js';
import { plural } from '../../utils/plural.js';

/** What the page's buttons ask of the jobs. */
export type JobActions = {
  cancel(id: number): Promise<JobView | undefined>;
  retryFailed(
    id: number,
  ): { readonly view: JobView; readonly reopened: number } | 'running' | undefined;
};

const MAX_STORES_PAGE = 200;

/** `reopened` is told of a job a retry took up again (the event hub follows it anew). */
export function createJobRoutes(
  db: Database,
  jobs: JobActions,
  tokens: PageTokens,
  reopened: (id: number) => void,
) {
  const stores = new StoreQuery(db);

  function search(id: number, request: ApiRequest): ApiResponse {
    const params = request.query;
    const status = params.get('status') ?? '';
    if (status !== '' && !STORE_STATUSES.has(status))
      return badRequest(
        `status: expected one of ${[...STORE_STATUSES].join(', ')}, got ${JSON.stringify(status)}`,
      );
    const limit = whole(params.get('limit'), 50, MAX_STORES_PAGE);
    const after = whole(params.get('after'), -1, Number.MAX_SAFE_INTEGER, 0);
    if (typeof limit === 'string') return badRequest(`limit: ${limit}`);
    if (typeof after === 'string') return badRequest(`after: ${after}`);
    return {
      status: 200,
      body: stores.page(id, {
        search: (params.get('q') ?? '').slice(0, 200),
        status: status === '' ? undefined : (status as StoreStatus),
        after,
        limit,
      }),
    };
  }

  async function act(
    action: 'cancel' | 'retry',
    id: number,
    request: ApiRequest,
  ): Promise<ApiResponse> {
    const refusal = actionRefusal(request, tokens);
    if (refusal !== undefined) return { status: 403, body: { error: refusal } };
    if (action === 'cancel') {
      const view = await jobs.cancel(id);
      if (view === undefined) return noJob(id);
      const message = view.cancelled
        ? `job ${id} cancelled: its unfinished stores failed "cancelled"`
        : `job ${id} had already ended ${view.status}; nothing to cancel`;
      return { status: 200, body: result(view, message) };
    }
    const retried = jobs.retryFailed(id);
    if (retried === undefined) return noJob(id);
    if (retried === 'running')
      return {
        status: 409,
        body: { error: `job ${id} is still running; retry once it has ended` },
      };
    const { view, reopened: stores } = retried;
    if (stores > 0) reopened(id);
    const message =
      stores === 0
        ? `job ${id} has no failed store to retry`
        : `job ${id}: ${plural(stores, 'failed store')} taken up again`;
    return { status: 200, body: result(view, message) };
  }

  return { search, act };
}

function result(view: JobView, message: string): ActionResult {
  return { job_id: view.job_id, status: view.status, cancelled: view.cancelled, message };
}

function noJob(id: number): ApiResponse {
  return { status: 404, body: { error: `no job ${id}` } };
}

function badRequest(error: string): ApiResponse {
  return { status: 400, body: { error } };
}

function whole(text: string | null, fallback: number, max: number, min = 1): number | string {
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (/^\d+$/.test(text) && value >= min && value <= max) return value;
  return `expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`;
}
