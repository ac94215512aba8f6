/** The JSON API the page reads — the same one scripts use. */
import type { ActionResult, Overview, StorePage } from '../shared/api-shapes.js';
import type { ProgressSample, ResultsDocument } from '../types.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `${path}: HTTP ${res.status}`);
  return body as T;
}

export type OverviewQuery = {
  readonly status?: string | undefined;
  readonly q?: string | undefined;
  readonly before?: string | undefined;
};

export function overview(query: OverviewQuery, limit = 50): Promise<Overview> {
  const params = new URLSearchParams({ limit: String(limit) });
  if (query.status) params.set('status', query.status);
  if (query.q) params.set('q', query.q);
  if (query.before) params.set('before', query.before);
  return getJson(`/api/overview?${params.toString()}`);
}

export function results(id: string): Promise<ResultsDocument> {
  return getJson(`/api/jobs/${encodeURIComponent(id)}/results`);
}

export async function timeline(id: string): Promise<ProgressSample[]> {
  const body = await getJson<{ samples: ProgressSample[] }>(
    `/api/jobs/${encodeURIComponent(id)}/timeline`,
  );
  return body.samples;
}

export type StoreSearch = { readonly q: string; readonly after?: number | undefined };

/** A page of a job's stores whose id or error holds `q`, searched by the server. */
export function stores(id: string, search: StoreSearch, limit = 50): Promise<StorePage> {
  const params = new URLSearchParams({ q: search.q, limit: String(limit) });
  if (search.after !== undefined) params.set('after', String(search.after));
  return getJson(`/api/jobs/${encodeURIComponent(id)}/stores?${params.toString()}`);
}

/**
 * A job page's action (`cancel`, `retry`): a POST with this page's token,
 * which the server gave it inside the page; rejects with the server's reason.
 */
export async function act(id: string, action: 'cancel' | 'retry'): Promise<ActionResult> {
  const token =
    document.querySelector<HTMLMetaElement>('meta[name="imgjob-page-token"]')?.content ?? '';
  const res = await fetch(`/api/jobs/${encodeURIComponent(id)}/${action}`, {
    method: 'POST',
    headers: { accept: 'application/json', 'x-imgjob-token': token },
  });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new ApiError(res.status, body.error ?? `${action}: HTTP ${res.status}`);
  return body as ActionResult;
}
