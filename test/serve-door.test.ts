/**
 * `imgjob serve` at the door: a server killed while it writes a big submit's
 * rows drops that never-accepted job at the next start (the built CLI in a
 * child process, killed for real); the refusals of a busy database or port
 * and of a bad flag run main() in this process, beside a real server holding
 * the database and the port. The restart in the middle of a job is
 * serve-restart.test.ts.
 *
 * @module-tag e2e
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { spawnServe, stopAll, type Served } from './helpers/cli.js';
import { runMain } from './helpers/main.js';
import * as api from './helpers/serve-client.js';

const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-door-'));

afterEach(stopAll);
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Starts `imgjob serve` on `db`. */
const serve = (db: string): Promise<Served> => spawnServe(db, ['--gpu-delay', '40', '-c', '2']);

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
