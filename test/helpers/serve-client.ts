/**
 * A small client of the serve API for tests: JSON in, status + headers +
 * parsed JSON out, and waits on a job's state (polling, never a fixed sleep).
 */
import { request } from 'node:http';

import type { ResultsDocument } from '../../src/types.js';
import { until } from './until.js';

export type Reply = {
  readonly status: number;
  readonly headers: Headers;
  /** The parsed JSON body (undefined for an empty one). */
  readonly body: unknown;
};

export async function call(base: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text === '' ? undefined : JSON.parse(text),
  };
}

/**
 * POSTs JSON as the given pieces, each written when the socket has taken
 * the one before, and resolves with the answer's status and text. Without
 * a Content-Length the body goes chunked. Not fetch(), which copies a body
 * whole before it sends it: a test that also runs the server would count
 * that copy as the server's.
 */
export function postPieces(
  url: string,
  pieces: readonly (string | Uint8Array)[],
  contentLength?: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sending = request(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(contentLength === undefined
            ? { 'transfer-encoding': 'chunked' }
            : { 'content-length': contentLength }),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => {
          resolve({ status: response.statusCode ?? 0, text });
        });
      },
    );
    sending.on('error', reject);
    let next = 0;
    const more = (): void => {
      while (next < pieces.length) {
        const room = sending.write(pieces[next++]);
        if (!room) {
          sending.once('drain', more);
          return;
        }
      }
      sending.end();
    };
    more();
  });
}

export async function submit(base: string, manifest: unknown): Promise<Reply> {
  return call(base, '/api/submit/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof manifest === 'string' ? manifest : JSON.stringify(manifest),
  });
}

/** Submits a manifest that must be accepted, and returns its job id. */
export async function submitOk(base: string, manifest: unknown): Promise<number> {
  const reply = await submit(base, manifest);
  if (reply.status !== 201)
    throw new Error(`submit answered ${reply.status}: ${JSON.stringify(reply.body)}`);
  return (reply.body as { job_id: number }).job_id;
}

export async function results(base: string, id: number): Promise<ResultsDocument> {
  const reply = await call(base, `/api/jobs/${id}/results`);
  if (reply.status !== 200) throw new Error(`results answered ${reply.status}`);
  return reply.body as ResultsDocument;
}

/** Polls a job's results until `predicate` holds; fails after `timeoutMs`. */
export async function waitForJob(
  base: string,
  id: number,
  predicate: (document: ResultsDocument) => boolean,
  timeoutMs = 10_000,
): Promise<ResultsDocument> {
  let document: ResultsDocument | undefined;
  await until(
    async () => predicate((document = await results(base, id))),
    () => `job ${id}: ${JSON.stringify(document?.counts)} ${document?.status ?? ''}`,
    timeoutMs,
  );
  return document as ResultsDocument;
}

export const finished = (document: ResultsDocument): boolean => document.status !== 'ongoing';

/** A manifest of `stores` stores with `images` images each, every URL unique. */
export function manifestOf(
  urlOf: (store: number, image: number) => string,
  stores: number,
  images: number,
): { count: number; visits: { store_id: string; image_url: string[]; visit_time: string }[] } {
  const visits = Array.from({ length: stores }, (_, store) => ({
    store_id: `S${store + 1}`,
    image_url: Array.from({ length: images }, (_, image) => urlOf(store + 1, image + 1)),
    visit_time: '2024-11-15T10:00:00Z',
  }));
  return { count: visits.length, visits };
}
