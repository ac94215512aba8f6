/**
 * What the dashboard's browser test files share: a fault server for the
 * images, an `imgjob serve` on a free port whose dashboard looks often, and
 * a context of the worker's headless Chromium — started before the file's
 * tests, stopped after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect } from 'vitest';

import { createAddressGuard } from '../../src/download/address-guard.js';
import { startServer, type RunningServer, type ServeConfig } from '../../src/serve/server.js';
import type { ResultsDocument } from '../../src/types.js';
import { guardPage, launchBrowser, type TestBrowser } from './browser.js';
import { startFaultServer, type FaultServer } from './fault-server.js';
import { serveOptions } from './serve-options.js';

export type DashboardBed = {
  readonly images: FaultServer;
  readonly server: RunningServer;
  readonly browser: TestBrowser;
  /** The server's origin, `http://127.0.0.1:<port>`. */
  readonly base: string;
};

/**
 * The bed of this file; its fields are there once `beforeAll` ran (when `run`).
 * @param options The server's engine options beyond `serveOptions`' (a file's own concurrency).
 */
export function dashboardBed(
  name: string,
  run: boolean,
  options: Partial<ServeConfig['options']> = {},
): DashboardBed {
  return dashboardBedWith(name, run, options, () => Promise.resolve());
}

/**
 * A bed for a file with a long setup of its own that needs no browser (a
 * 100,000-store job, 1,000 jobs): `setup` runs as soon as the servers
 * listen, while Chromium starts, and `prepared` is what it resolved with.
 */
export function dashboardBedWith<T>(
  name: string,
  run: boolean,
  options: Partial<ServeConfig['options']>,
  setup: (bed: Omit<DashboardBed, 'browser'>) => Promise<T>,
): DashboardBed & { readonly prepared: T } {
  const folder = mkdtempSync(join(tmpdir(), `imgjob-${name}-`));
  const bed = {} as { -readonly [K in keyof DashboardBed]: DashboardBed[K] } & { prepared: T };
  let browser: Promise<TestBrowser | undefined> | undefined;
  beforeAll(async () => {
    if (!run) return;
    // Side by side: Chromium starts (when it is the worker's first) while the
    // servers start and the file's setup runs.
    const launching = launchBrowser();
    browser = launching.catch(() => undefined);
    [bed.images, bed.server] = await Promise.all([
      startFaultServer(),
      startServer({
        port: 0,
        dbPath: join(folder, `${name}.db`),
        options: serveOptions({ concurrency: 4, perHost: 32, ...options }),
        addressGuard: createAddressGuard({ allow: ['127.0.0.1'] }),
        dashboard: { intervalMs: 25, jobsEveryMs: 100, retryMs: 100 },
      }),
    ]);
    bed.base = bed.server.url;
    [bed.prepared, bed.browser] = await Promise.all([setup(bed), launching]);
  }, 60_000);
  afterAll(async () => {
    if (!run) return;
    // The context even when the setup failed after the launch.
    await (await browser)?.close();
    await bed.server.close();
    await bed.images.close();
    rmSync(folder, { recursive: true, force: true });
  });
  return bed;
}

/**
 * `expect.poll` with room for a loaded machine: a page's state after a
 * request and an event is reached in milliseconds, but not always within
 * the default second when six test runs share two cores.
 */
export function eventually<T>(check: () => Promise<T> | T) {
  return expect.poll(check, { timeout: 10_000 });
}

/** The little of the DOM the page functions below use (this Node program has no DOM types). */
type DomNode = {
  readonly textContent: string | null;
  readonly classList: Iterable<string>;
  querySelector(selector: string): DomNode | null;
};

/** A new tab at `path`, that fails the test on any request beyond the server, or any script error. */
export async function openPage(bed: DashboardBed, path: string) {
  const page = await bed.browser.page();
  const seen = await guardPage(page, bed.base);
  await page.goto(`${bed.base}${path}`);
  return { page, seen };
}

/** The job page's summary numbers, by their labels. */
export async function jobNumbers(page: Page): Promise<Record<string, string>> {
  return page.$$eval('.summary dl > div', (pairs) =>
    Object.fromEntries(
      (pairs as unknown as DomNode[]).map((pair) => [
        pair.querySelector('dt')?.textContent ?? '',
        pair.querySelector('dd')?.textContent ?? '',
      ]),
    ),
  );
}

/** The summary numbers are the results document's counts. */
export function expectNumbers(numbers: Record<string, string>, document: ResultsDocument): void {
  const { counts } = document;
  expect(numbers).toMatchObject({
    'Images done': String(counts.done),
    Failed: String(counts.failed),
    Skipped: String(counts.skipped),
    Pending: String(counts.pending),
    'Total images': String(counts.images),
  });
}

/** How many image cells in `scope` are in each state (done, failed, skipped…). */
export async function cellCounts(
  page: Page,
  scope = '.store-table',
): Promise<Record<string, number>> {
  return page.$$eval(`${scope} .cell`, (cells) => {
    const counts: Record<string, number> = {};
    for (const cell of cells as unknown as DomNode[]) {
      const state = [...cell.classList].find((name) => name !== 'cell') ?? '?';
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  });
}
