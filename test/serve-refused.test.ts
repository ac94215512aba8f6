/**
 * A job of refused addresses ends in seconds (issue 19 §4): an image URL
 * naming an address the guard refuses (an IP literal) fails at once with the
 * same error a connection would get, without a connection being tried.
 * Before, each refused store cost a connection attempt (10,000 took 20 s);
 * that no connection is tried is asserted on a server listening at the
 * refused address, not with a clock (this file does not run alone).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startServer, type RunningServer } from '../src/serve/server.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';
import { call, results, submitOk } from './helpers/serve-client.js';
import { serveOptions } from './helpers/serve-options.js';

/**
 * That no connection is tried shows on the server at the refused address
 * whatever the count: 2,000 stores are many refusals, and 20,000 cost ~2.5 s
 * more of CPU to show the same.
 */
const STORES = 2_000;
const folder = mkdtempSync(join(tmpdir(), 'imgjob-serve-refused-'));
let server: RunningServer;
/** Listens where the refused URLs point: it must see no connection. */
let refusedAddress: FaultServer;

beforeAll(async () => {
  refusedAddress = await startFaultServer();
  server = await startServer({
    port: 0,
    dbPath: join(folder, 'refused.db'),
    options: serveOptions({ concurrency: 64 }),
  });
});

afterAll(async () => {
  await server.close();
  await refusedAddress.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('a job of refused addresses', () => {
  it(`of ${STORES} stores ends in seconds, each with the refusal a connection gets`, async () => {
    const visits: string[] = [];
    for (let i = 0; i < STORES; i++)
      visits.push(
        `{"store_id":"S${i}","image_url":[${JSON.stringify(refusedAddress.url(`/x/${i}.png`))}]}`,
      );
    const id = await submitOk(server.url, `{"count":${STORES},"visits":[${visits.join(',')}]}`);
    await expect
      .poll(
        async () =>
          ((await call(server.url, `/api/status?jobid=${id}`)).body as { status: string }).status,
        {
          timeout: 60_000,
          interval: 100,
        },
      )
      .not.toBe('ongoing');
    expect(refusedAddress.connections).toBe(0);
    const document = await results(server.url, id);
    expect(document.counts).toMatchObject({ stores: STORES, failed: STORES, done: 0 });
    expect(document.stores[7]?.images[0]).toMatchObject({
      status: 'failed',
      code: 'E_ADDRESS_REFUSED',
      attempts: 1,
      error:
        'refused: 127.0.0.1 is a loopback address; start the server with --allow-private to allow it',
    });
    expect((await call(server.url, '/healthz')).status).toBe(200);
  }, 60_000);
});
