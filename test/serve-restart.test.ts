/**
 * `imgjob serve` as a user runs it: the built CLI in a child process, stopped
 * with SIGKILL or SIGTERM in the middle of a job and started again on the
 * same database, which resumes the job. What happens at the door (a submit
 * killed halfway, a busy database or port, a bad flag) is serve-door.test.ts.
 *
 * @module-tag e2e
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Sqlite from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import type { ResultsDocument } from '../src/types.js';
import { spawnServe, stopAll, type Served } from './helpers/cli.js';
import * as api from './helpers/serve-client.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-restart-'));
let images: FaultServer;

beforeAll(async () => {
  images = await startFaultServer();
});
afterEach(stopAll);
afterAll(async () => {
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

/** Starts `imgjob serve` on `db`; a fixed GPU time keeps a job running long enough to be stopped halfway. */
const serve = (db: string, extra: readonly string[] = []): Promise<Served> =>
  spawnServe(db, ['--gpu-delay', '40', '-c', '2', ...extra]);

type Status = { readonly status: string; readonly counts: ResultsDocument['counts'] };

/**
 * Polls the job's status until `predicate` holds. Its answer is the counts
 * alone, where waitForJob asks for the whole results document every 10 ms:
 * for a 48-image job that is most of what both sides spend while they wait.
 */
async function waitForStatus(
  url: string,
  id: number,
  predicate: (status: Status) => boolean,
): Promise<void> {
  await expect
    .poll(async () => predicate((await api.call(url, `/api/status?jobid=${id}`)).body as Status), {
      timeout: 20_000,
      interval: 25,
    })
    .toBe(true);
}

const ended = (status: Status): boolean => status.status !== 'ongoing';

/** The image rows of a job, read straight from the database file (the server is gone). */
function recordedImages(db: string, job: number): { path: string; status: string }[] {
  const database = new Sqlite(db, { readonly: true });
  try {
    const rows = database
      .prepare('SELECT url, status FROM images WHERE job_id = ? ORDER BY store_idx, idx')
      .all(job) as { url: string; status: string }[];
    return rows.map((row) => ({ path: new URL(row.url).pathname, status: row.status }));
  } finally {
    database.close();
  }
}

describe.each(['SIGKILL', 'SIGTERM'] as const)(
  'stopped with %s in the middle of a job',
  (signal) => {
    it('resumes it at the next start: every image gets exactly one result, nothing recorded is fetched again', async () => {
      const db = join(folder, `${signal}.db`);
      const first = await serve(db);
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const small = await api.submitOk(
        first.url,
        api.manifestOf((s, i) => images.url(`/png/${signal}/small/${s}/${i}.png`), 1, 1),
      );
      await waitForStatus(first.url, small, ended);
      const smallDocument = await api.results(first.url, small);
      const prefix = `/png/${signal}/big/`;
      const id = await api.submitOk(
        first.url,
        api.manifestOf((s, i) => images.url(`${prefix}${s}/${i}.png`), 4, 12),
      );
      await waitForStatus(first.url, id, (status) => status.counts.done >= 12);

      const stopped = await first.run.kill(signal);
      if (signal === 'SIGTERM') {
        expect(stopped.code).toBe(0);
        expect(stopped.stderr).toContain('imgjob: SIGTERM: shutting down');
        expect(stopped.stderr).toContain(
          'imgjob: stopped; unfinished jobs resume at the next start',
        );
      } else {
        expect(stopped.signal).toBe('SIGKILL');
      }

      const atStop = recordedImages(db, id);
      const pending = atStop
        .filter((image) => image.status === 'pending')
        .map((image) => image.path);
      expect(atStop.filter((image) => image.status === 'done').length).toBeGreaterThanOrEqual(
        signal === 'SIGTERM' ? 12 : 1,
      );
      expect(pending.length).toBeGreaterThan(0);
      const fetchedBefore = images.requestsTo(prefix).length;

      const second = await serve(db);
      expect(second.run.stderr).toContain('resumed 1 job');
      await waitForStatus(second.url, id, ended);
      const document = await api.results(second.url, id);
      expect(document.status).toBe('completed');
      expect(document.counts).toEqual({
        stores: 4,
        images: 48,
        done: 48,
        failed: 0,
        skipped: 0,
        pending: 0,
      });
      expect(document.stores.map((store) => store.images.length)).toEqual([12, 12, 12, 12]);

      // Exactly the images without a recorded result were fetched, each once.
      const fetchedAfter = images
        .requestsTo(prefix)
        .slice(fetchedBefore)
        .map((request) => request.path);
      expect([...fetchedAfter].sort()).toEqual([...pending].sort());

      // The job that had finished before the stop answers as it did.
      expect((await api.call(second.url, `/api/status?jobid=${small}`)).body).toStrictEqual({
        status: 'completed',
        job_id: String(small),
        counts: smallDocument.counts,
      });
      expect(await api.results(second.url, small)).toEqual(smallDocument);

      const end = await second.run.kill('SIGTERM');
      expect(end.code).toBe(0);
      expect(recordedImages(db, id).every((image) => image.status === 'done')).toBe(true);
    });
  },
);
