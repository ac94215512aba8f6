/**
 * The HTTP API, as routes from a request to a JSON answer. The two routes of
 * the Retail Pulse service keep its exact shapes and codes:
 *
 * - `POST /api/submit/` → 201 `{"job_id": 123}`; a bad manifest → 400 `{"error": "…"}`.
 * - `GET /api/status?jobid=123` → 200 `{"status", "job_id": "123"}` (+ `error`
 *   when failed); an unknown or missing jobid → 400 `{}`.
 *
 * Beyond it: `GET /api/jobs`, `GET|DELETE /api/jobs/<id>`, `GET /api/jobs/<id>/results`,
 * `GET /healthz`, `GET /metrics` (Prometheus). `/api/status` also carries the job's `counts` beside the
 * original three fields, which keep their meaning.
 * Nothing here touches a socket, so the routes are tested as functions.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { sendMetrics, type MetricsAnswer } from '../metrics/server.js';
import { ManifestError } from '../utils/errors.js';
import { JobTooLargeError, ShuttingDownError, type JobService } from './job-service.js';
import { StorageUnavailableError } from './storage-error.js';

export type ApiRequest = {
  readonly method: string;
  /** The path without its query. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** The Content-Type header, as sent. */
  readonly contentType?: string | undefined;
  /** Reads the body's bytes; rejects with a BodyTooLargeError past the limit. */
  readonly body: () => Promise<Buffer>;
  /** A request header by its lower-case name (the first, when sent twice). */
  readonly header?: ((name: string) => string | undefined) | undefined;
};

export type ApiResponse = {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Answers on the socket itself instead of as JSON (the dashboard's page and event stream). */
  readonly raw?: (req: IncomingMessage, res: ServerResponse) => void;
};

type Handler = (
  request: ApiRequest,
  params: readonly string[],
) => Promise<ApiResponse> | ApiResponse;
type Route = { readonly pattern: RegExp; readonly methods: Readonly<Record<string, Handler>> };

/** Most jobs `GET /api/jobs` lists at once. */
const MAX_LIST = 1000;

/** The Prometheus exposition of the server's metrics (`GET /metrics`). */
export type MetricsText = () => Promise<MetricsAnswer>;

export function createApi(
  service: JobService,
  dashboard?: (request: ApiRequest) => ApiResponse | Promise<ApiResponse> | undefined,
  metricsText?: MetricsText,
): (request: ApiRequest) => Promise<ApiResponse> {
  const routes: readonly Route[] = [
    { pattern: /^\/api\/submit\/?$/, methods: { POST: submit } },
    { pattern: /^\/api\/status\/?$/, methods: { GET: status } },
    { pattern: /^\/api\/jobs\/?$/, methods: { GET: list } },
    { pattern: /^\/api\/jobs\/([^/]+)\/?$/, methods: { GET: view, DELETE: cancel } },
    { pattern: /^\/api\/jobs\/([^/]+)\/results\/?$/, methods: { GET: results } },
    { pattern: /^\/healthz\/?$/, methods: { GET: health } },
    ...(metricsText
      ? [{ pattern: /^\/metrics$/, methods: { GET: () => metricsPage(metricsText) } }]
      : []),
  ];

  async function submit(request: ApiRequest): Promise<ApiResponse> {
    // A web page can POST text/plain to any address without asking (no CORS
    // preflight); it cannot send application/json without one.
    if (!isJson(request.contentType)) {
      return {
        status: 415,
        headers: { accept: 'application/json', connection: 'close' },
        body: {
          error: `expected Content-Type: application/json, got ${request.contentType === undefined ? 'none' : JSON.stringify(request.contentType)}`,
        },
      };
    }
    const bytes = await request.body();
    try {
      return { status: 201, body: { job_id: await service.submit(bytes) } };
    } catch (error) {
      if (error instanceof ManifestError)
        return { status: 400, body: { error: error.problems.join('; ') } };
      if (error instanceof JobTooLargeError) return { status: 413, body: { error: error.message } };
      if (error instanceof ShuttingDownError || error instanceof StorageUnavailableError)
        return unavailable(error.message);
      throw error;
    }
  }

  function view(_request: ApiRequest, [raw = '']: readonly string[]): ApiResponse {
    const id = jobId(raw);
    const job = id === undefined ? undefined : service.view(id);
    return job === undefined ? noJob(raw) : { status: 200, body: job };
  }

  async function cancel(_request: ApiRequest, [raw = '']: readonly string[]): Promise<ApiResponse> {
    const id = jobId(raw);
    const job = id === undefined ? undefined : await service.cancel(id);
    return job === undefined ? noJob(raw) : { status: 200, body: job };
  }

  function status(request: ApiRequest): ApiResponse {
    // The original answers an unknown or missing job with an empty object.
    const id = jobId(request.query.get('jobid'));
    const document = id === undefined ? undefined : service.status(id);
    return document ? { status: 200, body: document } : { status: 400, body: {} };
  }

  function list(request: ApiRequest): ApiResponse {
    const limit = wholeNumber(request.query, 'limit', 50, 1, MAX_LIST);
    const before = wholeNumber(request.query, 'before', undefined, 1, Number.MAX_SAFE_INTEGER);
    if (typeof limit === 'string') return badRequest(limit);
    if (typeof before === 'string') return badRequest(before);
    return { status: 200, body: { jobs: service.list(limit, before) } };
  }

  function results(_request: ApiRequest, [raw = '']: readonly string[]): ApiResponse {
    const id = jobId(raw);
    const document = id === undefined ? undefined : service.results(id);
    return document === undefined ? noJob(raw) : { status: 200, body: document };
  }

  function health(): ApiResponse {
    const report = service.health;
    return { status: report.status === 'ok' ? 200 : 503, body: report };
  }

  return async (request) => {
    const page = dashboard?.(request);
    if (page) return page;
    let allowed: string[] | undefined;
    for (const route of routes) {
      const match = route.pattern.exec(request.path);
      if (!match) continue;
      // HEAD is GET without the body (node:http leaves the body out).
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const handler = route.methods[method];
      if (handler) return handler(request, match.slice(1));
      allowed = Object.keys(route.methods);
    }
    if (allowed) {
      const allow = allowed.flatMap((method) => (method === 'GET' ? ['GET', 'HEAD'] : [method]));
      return {
        status: 405,
        headers: { allow: allow.join(', ') },
        body: {
          error: `${request.method} is not allowed on ${request.path}; use ${allow.join(' or ')}`,
        },
      };
    }
    return { status: 404, body: { error: `no such route: ${request.method} ${request.path}` } };
  };
}

/** Plain text, not JSON: answered on the socket. */
async function metricsPage(metricsText: MetricsText): Promise<ApiResponse> {
  const answer = await metricsText();
  return {
    status: 200,
    body: undefined,
    raw: (req, res) => {
      sendMetrics(req, res, answer);
    },
  };
}

/** A job id as the routes take it: a whole number from 1, written plainly. */
function jobId(text: string | null): number | undefined {
  if (text === null || !/^[1-9]\d{0,15}$/.test(text)) return undefined;
  const id = Number(text);
  return Number.isSafeInteger(id) ? id : undefined;
}

/** A whole-number query parameter, or the message of what is wrong with it. */
function wholeNumber<T extends number | undefined>(
  query: URLSearchParams,
  name: string,
  fallback: T,
  min: number,
  max: number,
): number | T | string {
  const text = query.get(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (/^\d+$/.test(text) && value >= min && value <= max) return value;
  return `${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`;
}

/** `application/json`, with or without parameters (`; charset=utf-8`). */
function isJson(contentType: string | undefined): boolean {
  return contentType?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

function noJob(raw: string): ApiResponse {
  return { status: 404, body: { error: `no job ${raw}` } };
}

function badRequest(error: string): ApiResponse {
  return { status: 400, body: { error } };
}

function unavailable(error: string): ApiResponse {
  return { status: 503, headers: { 'retry-after': '5' }, body: { error } };
}
