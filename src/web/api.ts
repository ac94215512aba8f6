/** The JSON API the page reads — the same one scripts use. */
import type { Overview, ResultsDocument, Sample } from './model.js';

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

export async function timeline(id: string): Promise<Sample[]> {
  const body = await getJson<{ samples: Sample[] }>(`/api/jobs/${encodeURIComponent(id)}/timeline`);
  return body.samples;
}
