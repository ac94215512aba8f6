/**
 * The HTML report in a real headless Chromium: opened from file:// with
 * every request refused, it shows the numbers of the results file, renders
 * hostile text as text, and asks nothing of the network. The runs and the
 * reports go through `main()` in this process, but for the run stopped by
 * SIGINT, which only a process of its own can take.
 *
 * @module-tag e2e
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadResults } from '../src/results/reader.js';
import type { ResultsDocument } from '../src/types.js';
import { guardPage, launchBrowser, requireBrowser, type TestBrowser } from './helpers/browser.js';
import { spawnCli, stopAll, waitForResults } from './helpers/cli.js';
import { runJobHere, runMain } from './helpers/main.js';
import { startFaultServer, type FaultServer } from './helpers/fault-server.js';

const run = requireBrowser('report-html.test.ts');
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');
const folder = mkdtempSync(join(tmpdir(), 'imgjob-report-html-'));
// Markup that must stay text, and a right-to-left override that must show as
// an escape (it would make the rest of the id read backwards).
const XSS_STORE =
  '</script><script>window.__xss=1</script><img src=x onerror="window.__xss=2">\u202egpj.exe';
let images: FaultServer;
let browser: TestBrowser;
/** The one tab every report opens in: a tab costs Chromium ~0.3 s of CPU, a load in a tab less. */
let tab: Page;
/** What `tab` asked beyond file:// (refused), and its errors: emptied before each report. */
let seen: Awaited<ReturnType<typeof guardPage>>;

beforeAll(async () => {
  if (!run) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  images = await startFaultServer();
  browser = await launchBrowser();
  tab = await browser.page();
  seen = await guardPage(tab, (url) => url.protocol === 'file:');
}, 60_000);

afterAll(async () => {
  if (!run) return;
  await stopAll();
  await browser.close();
  await images.close();
  rmSync(folder, { recursive: true, force: true });
});

function manifest(name: string, visits: { store_id: string; image_url: string[] }[]): string {
  const path = join(folder, `${name}.json`);
  writeFileSync(path, JSON.stringify({ count: visits.length, visits }));
  return path;
}

/**
 * Opens a report from file:// in the file's tab, with every other request
 * refused and recorded in `seen` (the report's alone: emptied before it).
 */
async function openReport(path: string, colorScheme: 'light' | 'dark' = 'light') {
  for (const list of [seen.outside, seen.errors, seen.requests]) list.length = 0;
  await tab.emulateMedia({ colorScheme });
  await tab.goto(pathToFileURL(path).href);
  await tab.waitForSelector('.summary dl');
  return { page: tab, seen };
}

async function shown(page: Page) {
  const numbers = await page.$$eval('.summary dl > div', (pairs) =>
    Object.fromEntries(
      pairs.map((pair) => [
        pair.querySelector('dt')?.textContent ?? '',
        pair.querySelector('dd')?.textContent ?? '',
      ]),
    ),
  );
  const cells = await page.$$eval('.store-table tr[data-store]', (rows) =>
    rows.map((row) =>
      [...row.querySelectorAll('.cell')].map((cell) =>
        [...cell.classList].find((name) => name !== 'cell'),
      ),
    ),
  );
  return { numbers, cells };
}

function expected(document: ResultsDocument) {
  const { counts } = document;
  return {
    numbers: {
      'Images done': String(counts.done),
      Failed: String(counts.failed),
      Skipped: String(counts.skipped),
      Pending: String(counts.pending),
      'Total images': String(counts.images),
    },
    cells: document.stores.map((store) => store.images.map((image) => image.status)),
  };
}

describe.skipIf(!run)('the HTML report in Chromium', () => {
  it('opens from file:// with no network and shows the numbers of the results file', async () => {
    const results = join(folder, 'mixed.results.json');
    const path = manifest('mixed', [
      { store_id: 'A1', image_url: [images.url('/png/a/1.png'), images.url('/png/a/2.png')] },
      {
        store_id: XSS_STORE,
        image_url: [
          images.url('/png/</script>.png'),
          images.url('/missing/b.png'),
          images.url('/png/b/3.png'),
        ],
      },
      { store_id: 'C3', image_url: [images.url('/png/c/1.png')] },
    ]);
    expect(
      (await runJobHere(['run', path, '-o', results, '--gpu-delay', '5', '--seed', '3'])).code,
    ).toBe(1);
    const document = await loadResults(results);
    const html = join(folder, 'mixed.html');
    expect((await runMain(['report', results, '--html', html])).code).toBe(0);

    for (const colorScheme of ['light', 'dark'] as const) {
      const { page, seen } = await openReport(html, colorScheme);
      const view = await shown(page);
      expect(view.numbers).toMatchObject(expected(document).numbers);
      expect(view.cells).toEqual(expected(document).cells);
      expect(await page.locator('.failed-store .store-id').textContent()).toBe(
        XSS_STORE.replace('\u202e', '\\u202e'),
      );
      expect(await page.locator('.failed-store .error').textContent()).toBe(
        document.stores[1]?.error,
      );
      expect(await page.locator('main img, main script').count()).toBe(0);
      expect(
        await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss),
      ).toBeUndefined();
      expect(seen.outside).toEqual([]);
      expect(seen.requests.map((request) => new URL(request.url()).protocol)).toEqual(['file:']);
      expect(seen.errors).toEqual([]);
      // Failed images grouped by code, and the search, work from the file alone.
      expect(await page.locator('.error-groups tbody th').allTextContents()).toEqual([
        'E_HTTP_STATUS',
      ]);
      await page.fill('#store-search', 'a1');
      await page.waitForSelector('.match-count');
      expect(await page.locator('.match-count').textContent()).toBe('1 store matches');
      expect(await page.locator('.search-table tbody tr').getAttribute('data-store')).toBe('A1');
      await page.fill('#store-search', '');
      await page.locator('.store-table .cell.failed').hover();
      await page.screenshot({
        path: join(SCREENSHOTS, `report-${colorScheme}.png`),
        fullPage: true,
      });
    }
  });

  it('a resumed job: its uuid without #, times with their zone, duration and chart over the time it ran', async () => {
    const results = join(folder, 'resumed.results.json');
    const path = manifest('resumed', [
      { store_id: 'R1', image_url: [images.url('/png/r/1.png'), images.url('/png/r/2.png')] },
      { store_id: 'R2', image_url: [images.url('/gate/report-resumed/png/3.png')] },
    ]);
    const first = spawnCli(['run', path, '-o', results, '--gpu-delay', '0']);
    await waitForResults(results, (doc) => doc.counts.done === 2, { run: first });
    expect((await first.kill('SIGINT')).code).toBe(130);
    // As if the resume came an hour later: the first run moves an hour back.
    const HOUR = 3_600_000;
    const stopped = JSON.parse(readFileSync(results, 'utf8')) as ResultsDocument;
    writeFileSync(
      results,
      JSON.stringify({
        ...stopped,
        created_at: new Date(Date.parse(stopped.created_at) - HOUR).toISOString(),
        timeline: stopped.timeline?.map((samples) => samples.map(([t, n]) => [t - HOUR, n])),
      }),
    );
    images.gate('report-resumed').open();
    const resumed = await runJobHere(['run', path, '-o', results, '--gpu-delay', '0', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    const document = await loadResults(results);
    expect(document.timeline).toHaveLength(2);
    const html = join(folder, 'resumed.html');
    expect((await runMain(['report', results, '--html', html])).code).toBe(0);

    const { page } = await openReport(html);
    expect(await page.locator('h1').textContent()).toBe(`Job ${document.job_id} completed`);
    expect(await page.title()).not.toContain('#');
    const { numbers } = await shown(page);
    // Seconds of work, not the hour between the runs.
    expect(numbers.Duration).toMatch(/^\d+(\.\d)?s$/);
    expect(numbers.Started).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC([+-]\d\d:\d\d)?$/);
    expect(numbers.Finished).toMatch(/ UTC([+-]\d\d:\d\d)?$/);
    expect(await page.locator('.report-head').textContent()).toMatch(/ UTC([+-]\d\d:\d\d)?$/);
    expect(await page.locator('.throughput figcaption').textContent()).toContain(
      'the pauses between its runs left out',
    );
    expect(await page.locator('.throughput svg polyline').count()).toBe(1);
  });

  it('says a job was ongoing when the report was written from a live file', async () => {
    const results = join(folder, 'live.results.json');
    const path = manifest('live', [
      {
        store_id: 'L',
        image_url: [images.url('/png/l/1.png'), images.url('/gate/report-live/png/2.png')],
      },
    ]);
    const job = runJobHere(['run', path, '-o', results, '--gpu-delay', '0']);
    const document = await waitForResults(results, (doc) => doc.counts.done === 1);
    const html = join(folder, 'live.html');
    expect((await runMain(['report', results, '--html', html])).code).toBe(0);
    images.gate('report-live').open();
    expect((await job).code).toBe(0);
    const { page, seen } = await openReport(html);
    expect(await page.locator('.banner.ongoing').textContent()).toContain('still ongoing');
    expect(await page.locator('h1 .badge').textContent()).toBe('ongoing');
    expect((await shown(page)).numbers).toMatchObject(expected(document).numbers);
    expect(seen.outside).toEqual([]);
  });
});
