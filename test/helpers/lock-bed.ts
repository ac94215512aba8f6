/**
 * The bed of the lock files (lock.test.ts, lock-left.test.ts): one fault
 * server, a folder, and one-image jobs behind a gate of their own.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll } from 'vitest';

import { stopAll } from './cli.js';
import { startFaultServer, type FaultServer } from './fault-server.js';

/** No GPU wait and no retry: a run is its lock and one request. */
export const ARGS = ['--gpu-delay', '0', '--retries', '0'];

/** The one line of a run refused because another holds the lock. */
export const LOCKED =
  /^imgjob: .+ is being written by a running imgjob \(pid \d+( on .+)?\); wait for it to end or stop it, or choose another file with -o \(lock: .+\.lock\)\n$/;

export type LockBed = {
  readonly server: FaultServer;
  /** A one-image job behind gate `key`; returns its manifest and results path. */
  gatedJob(key: string): { manifest: string; out: string };
};

/** Starts the server and the folder before the file's tests; stops every CLI, the server and the folder after. */
export function useLockBed(): LockBed {
  let server: FaultServer | undefined;
  let dir = '';
  beforeAll(async () => {
    server = await startFaultServer();
    dir = mkdtempSync(join(tmpdir(), 'imgjob-lock-'));
  });
  afterAll(async () => {
    await stopAll();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get server() {
      if (server === undefined) throw new Error('the lock bed is used before its beforeAll');
      return server;
    },
    gatedJob(key) {
      const manifest = join(dir, `${key}.json`);
      const visits = [{ store_id: 'S1', image_url: [this.server.url(`/gate/${key}/image.png`)] }];
      writeFileSync(manifest, JSON.stringify({ count: 1, visits }));
      return { manifest, out: join(dir, `${key}.results.json`) };
    },
  };
}
