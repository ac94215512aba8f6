/**
 * The dashboard of `imgjob serve`: the page and its files at `/`, and the
 * read endpoints it needs beyond the job API —
 *
 * - `GET /api/overview?status=&q=&before=&limit=` one page of the jobs list
 *   (newest first, keyset-paged), totals per status, open streams, workers;
 * - `GET /api/jobs/<id>/timeline` throughput samples of a job;
 * - `GET /api/events[?job=<id>]` the live event stream (server-sent events).
 *
 * The server hands every request here first; what is not the dashboard's
 * falls through to the job API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { Database } from 'better-sqlite3';

import type { JobStatus } from '../../types.js';
import type { Overview, WorkerInfo } from '../../shared/api-shapes.js';
import type { ApiRequest, ApiResponse } from '../api.js';
import type { JobService } from '../job-service.js';
import { PageTokens } from './actions.js';
import { Assets } from './assets.js';
import { EventHub, type HubOptions, type JobSource } from './hub.js';
import { JobQuery } from './job-query.js';
import { createJobRoutes, type JobActions } from './job-routes.js';

export type DashboardOptions = HubOptions & {
  readonly db: Database;
  readonly jobs: JobSource & JobActions & Pick<JobService, 'status'>;
  /** The queue's workers, with `serve --queue`; without it the page shows no Workers panel. */
  readonly workers?: (() => readonly WorkerInfo[]) | undefined;
};

export type Dashboard = {
  /** The answer to a dashboard request, or undefined when it is not one. */
  readonly route: (request: ApiRequest) => ApiResponse | Promise<ApiResponse> | undefined;
  /** Event streams open now. */
  readonly streamCount: number;
  /** Looks at the jobs list now and sends the job changes waiting, without waiting for the timers. */
  tick(): void;
  /** Cuts every stream as a network drop would (tests of the resume). */
  dropStreams(): void;
  /** Ends every stream (with a `bye` event); later ones get 503. */
  close(): void;
};

const STATUSES: ReadonlySet<string> = new Set(['ongoing', 'completed', 'failed']);
const MAX_PAGE = 200;
const DASHBOARD_API = /^\/api\/(overview|events|jobs\/[^/]+\/(timeline|stores|cancel|retry))\/?$/;

export function createDashboard(options: DashboardOptions): Dashboard {
  const query = new JobQuery(options.db);
  const hub = new EventHub(query, options.jobs, options);
  const tokens = new PageTokens();
  // Every page gets its own token, for the buttons that act (actions.ts).
  const assets = new Assets(() => tokens.issue());
  const jobRoutes = createJobRoutes(options.db, options.jobs, tokens, (id) => {
    hub.reopened(id);
  });

  const page = (name: string): ApiResponse => ({
    status: 200,
    body: null,
    raw: (req, res) => {
      assets.send(name, req, res);
    },
  });

  function overview(request: ApiRequest): ApiResponse {
    const { query: params } = request;
    const status = params.get('status') ?? '';
    if (status !== '' && !STATUSES.has(status))
      return badRequest(
        `status: expected ongoing, completed or failed, got ${JSON.stringify(status)}`,
      );
    const limit = whole(params.get('limit'), 50, MAX_PAGE);
    const before = whole(params.get('before'), undefined, Number.MAX_SAFE_INTEGER);
    if (typeof limit === 'string') return badRequest(`limit: ${limit}`);
    if (typeof before === 'string') return badRequest(`before: ${before}`);
    const search = (params.get('q') ?? '').slice(0, 200);
    const { jobs, next } = query.page({
      status: status === '' ? undefined : (status as JobStatus),
      search,
      before,
      limit,
    });
    const workers = options.workers?.();
    const body: Overview = {
      jobs,
      next_before: next,
      totals: query.totals(),
      streams: hub.streamCount,
      now: new Date().toISOString(),
      ...(workers === undefined ? {} : { workers }),
    };
    return { status: 200, body };
  }

  function timeline(raw: string): ApiResponse {
    const id = jobId(raw);
    if (id === undefined || options.jobs.status(id) === undefined)
      return { status: 404, body: { error: `no job ${raw}` } };
    return { status: 200, body: { job_id: String(id), samples: hub.samples(id) } };
  }

  function events(request: ApiRequest): ApiResponse {
    const raw = request.query.get('job');
    const job = raw === null ? undefined : jobId(raw);
    if (raw !== null && job === undefined)
      return badRequest(`job: not a job id: ${JSON.stringify(raw)}`);
    return {
      status: 200,
      body: null,
      raw: (req: IncomingMessage, res: ServerResponse) => {
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' }).end();
          return;
        }
        const header = req.headers['last-event-id'];
        const lastId =
          (typeof header === 'string' ? header : undefined) ??
          request.query.get('last_event_id') ??
          undefined;
        hub.connect(req, res, job, lastId);
      },
    };
  }

  return {
    route: (request) => {
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const { path } = request;
      // The job API's own requests pass through here first: one test lets them by.
      if (path.startsWith('/api/') && !DASHBOARD_API.test(path)) return undefined;
      let match: RegExpExecArray | null;
      if (path === '/' || /^\/jobs\/[^/]+\/?$/.test(path)) return only(method, page('index.html'));
      if ((match = /^\/assets\/([\w.-]+)$/.exec(path)) && assets.has(match[1] ?? ''))
        return only(method, page(match[1] ?? ''));
      if (/^\/api\/overview\/?$/.test(path)) return only(method, () => overview(request));
      if ((match = /^\/api\/jobs\/([^/]+)\/timeline\/?$/.exec(path)))
        return only(method, () => timeline(match?.[1] ?? ''));
      if (/^\/api\/events\/?$/.test(path)) return only(method, () => events(request));
      if ((match = /^\/api\/jobs\/([^/]+)\/stores\/?$/.exec(path))) {
        const id = jobId(match[1] ?? '');
        return only(method, () =>
          id === undefined ? noJob(match?.[1] ?? '') : jobRoutes.search(id, request),
        );
      }
      if ((match = /^\/api\/jobs\/([^/]+)\/(cancel|retry)\/?$/.exec(path))) {
        const id = jobId(match[1] ?? '');
        const action = match[2] === 'cancel' ? 'cancel' : 'retry';
        if (method !== 'POST')
          return {
            status: 405,
            headers: { allow: 'POST' },
            body: { error: `${method} is not allowed here; use POST` },
          };
        return id === undefined ? noJob(match[1] ?? '') : jobRoutes.act(action, id, request);
      }
      return undefined;
    },
    get streamCount() {
      return hub.streamCount;
    },
    tick: () => {
      hub.tick();
    },
    dropStreams: () => {
      hub.dropStreams();
    },
    close: () => {
      hub.close();
    },
  };
}

/** GET only: any other method gets 405 with the Allow header. */
function only(method: string, answer: ApiResponse | (() => ApiResponse)): ApiResponse {
  if (method !== 'GET')
    return {
      status: 405,
      headers: { allow: 'GET, HEAD' },
      body: { error: `${method} is not allowed here; use GET` },
    };
  return typeof answer === 'function' ? answer() : answer;
}

function jobId(text: string): number | undefined {
  if (!/^[1-9]\d{0,15}$/.test(text)) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : undefined;
}

function whole<T extends number | undefined>(
  text: string | null,
  fallback: T,
  max: number,
): number | T | string {
  if (text === null || text === '') return fallback;
  const value = Number(text);
  if (/^\d+$/.test(text) && value >= 1 && value <= max) return value;
  return `expected a whole number from 1 to ${max}, got ${JSON.stringify(text)}`;
}

function noJob(raw: string): ApiResponse {
  return { status: 404, body: { error: `no job ${raw}` } };
}

function badRequest(error: string): ApiResponse {
  return { status: 400, body: { error } };
}
