/**
 * What the everyday CLI test files share: one fault server for the file, a
 * fresh folder per test case, and manifests written there whose image paths
 * are the server's. Spawned CLIs are stopped and the case folders removed
 * after the file.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, beforeEach } from 'vitest';

import { stopAll } from './cli.js';
import { startFaultServer, type FaultServer } from './fault-server.js';

export type CaseBed = {
  readonly server: FaultServer;
  /** This test case's folder. */
  readonly dir: string;
  /**
   * Writes `<dir>/<name>`: one visit per store, in order, each image path
   * (`/img/…`, `/gate/…`) made a URL of the server.
   */
  writeManifest(stores: Record<string, readonly string[]>, name?: string): string;
};

export function caseBed(name: string): CaseBed {
  let server: FaultServer | undefined;
  let dir: string | undefined;
  let caseNumber = 0;
  const folders: string[] = [];
  beforeAll(async () => {
    server = await startFaultServer();
  });
  afterAll(async () => {
    await stopAll();
    await server?.close();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });
  beforeEach(() => {
    server?.reset();
    dir = mkdtempSync(join(tmpdir(), `imgjob-${name}-${++caseNumber}-`));
    folders.push(dir);
  });
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`no ${what} outside a test`);
    return value;
  };
  return {
    get server() {
      return started(server, 'fault server');
    },
    get dir() {
      return started(dir, 'case folder');
    },
    writeManifest(stores, file = 'm.json') {
      const base = started(server, 'fault server');
      const visits = Object.entries(stores).map(([store_id, paths]) => ({
        store_id,
        image_url: paths.map((path) => base.url(path)),
      }));
      const path = join(started(dir, 'case folder'), file);
      writeFileSync(path, JSON.stringify({ count: visits.length, visits }));
      return path;
    },
  };
}
