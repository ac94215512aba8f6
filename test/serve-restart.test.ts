/**
 * `imgjob serve` as a user runs it: the built CLI in a child process, killed
 * and started again on the same database. The refusals at the door (a busy
 * database or port, a bad flag) run main() in this process.
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
import { runMain } from './helpers/main.js';
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

describe('imgjob serve at the door', () => {
  it("a server killed while it writes a big submit's rows drops that never-accepted job at the next start", async () => {
    const db = join(folder, 'killed-submit.db');
    const first = await serve(db);
    // 50k stores: their rows took 0.5-1.5 s to write on a loaded machine, a window
    // the poll below lands in with room to spare. Twice as many cost twice the CPU
    // (~1.3 s more, most of it parsing the body) for a window not needed.
    const stores = 50_000;
    const visits: string[] = [];
    for (let i = 0; i < stores; i++)
      visits.push(`{"store_id":"S${i}","image_url":["http://127.0.0.1:9/${i}.png"]}`);
    let answered = false;
    const submitting = fetch(`${first.url}/api/submit/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"count":${stores},"visits":[${visits.join(',')}]}`,
    }).then(
      () => {
        answered = true;
      },
      () => undefined,
    );
    // The rows go in a few thousand stores at a time, with other clients
    // answered in between: the job shows in the list before its submit is
    // answered. Kill the server then. A poll every 25 ms sees them in time, at a
    // fifth of the requests of one every 5 ms.
    await expect
      .poll(
        async () => ((await api.call(first.url, '/api/jobs')).body as { jobs: unknown[] }).jobs,
        {
          timeout: 30_000,
          interval: 25,
        },
      )
      .toHaveLength(1);
    expect(answered).toBe(false);
    await first.run.kill('SIGKILL');
    await submitting;
    const second = await serve(db);
    const jobs = await api.call(second.url, '/api/jobs');
    expect(jobs.body).toEqual({ jobs: [] });
    await second.run.kill('SIGTERM');
    const ended = await second.run.exited;
    expect(ended.stderr).toMatch(
      /job 1 was being submitted when the server stopped; it was never accepted, and is removed/,
    );
  }, 60_000);

  it('refuses a database another server is using (exit 2), and an address in use', async () => {
    const db = join(folder, 'busy.db');
    const first = await serve(db);
    // The refusals come from main() before any server starts: in this process.
    const second = await runMain(['serve', '--port', '0', '--db', db]);
    expect(second.code).toBe(2);
    expect(second.stderr).toBe(
      `imgjob: cannot use database ${db}: it is in use by another imgjob serve\n`,
    );

    const port = new URL(first.url).port;
    // --threads 1: the download threads' module is built into dist/ only, not beside src/.
    const other = join(folder, 'other.db');
    const taken = await runMain(['serve', '--port', port, '--db', other, '--threads', '1']);
    expect(taken.code, taken.stderr).toBe(2);
    expect(taken.stderr).toBe(
      `imgjob: cannot listen on 127.0.0.1:${port}: the address is in use\n`,
    );
    expect((await first.run.kill('SIGINT')).code).toBe(0);
  });

  it('refuses a bad flag with exit 2', async () => {
    const result = await runMain(['serve', '--port', 'eighty']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'Expected `port` to be a whole number from 0 and up, got `eighty`',
    );
  });
});
