/**
 * The dashboard in a real headless Chromium (playwright-core, Debian's
 * chromium): a job followed to completed without a reload, failures, hostile
 * text, no request beyond the server, screenshots. (The event stream — one
 * per tab, a lossless reconnect, Paused/Live — is in
 * dashboard-streams.test.ts; search, filter and paging over 1,000 jobs in
 * dashboard-paging.test.ts.)
 *
 * @module-tag e2e
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';

import type { Counts } from '../src/types.js';
import { guardPage, requireBrowser } from './helpers/browser.js';
import {
  cellCounts,
  dashboardBed,
  eventually,
  expectNumbers,
  jobNumbers,
} from './helpers/dashboard-bed.js';
import {
  call,
  finished,
  manifestOf,
  results,
  submitOk,
  waitForJob,
} from './helpers/serve-client.js';

const run = requireBrowser('dashboard.test.ts');
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');
beforeAll(() => {
  mkdirSync(SCREENSHOTS, { recursive: true });
});
const bed = dashboardBed('dashboard', run, { concurrency: 16, timeoutMs: 20_000 });

/** The file's one tab: a tab costs Chromium ~0.3 s of CPU, and a renderer process of its own. */
let tab: { readonly page: Page; readonly seen: Awaited<ReturnType<typeof guardPage>> } | undefined;

/**
 * The file's tab at `path`, as a new tab would be (1280×800, light, no
 * hover), failing the test on any request beyond the server or any script
 * error: `seen` holds this page's alone. A case leaves it with `leave()`.
 */
async function openTab(path: string) {
  if (tab === undefined) {
    const page = await bed.browser.page();
    tab = { page, seen: await guardPage(page, bed.base) };
  }
  const { page, seen } = tab;
  for (const list of [seen.outside, seen.errors, seen.requests]) list.length = 0;
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.mouse.move(0, 0);
  await page.goto(`${bed.base}${path}`);
  return tab;
}

/** Ends a case's page (and its event stream), keeping the tab for the next case. */
async function leave(page: Page): Promise<void> {
  await page.goto('about:blank');
}

const XSS_STORE = '<img src=x onerror="window.__xss=1">';
const XSS_URL_PATH =
  '/png/</script><script>window.__xss=2</script><img/src=x/onerror=window.__xss=3>.png';

describe.skipIf(!run)('dashboard in Chromium', () => {
  it('shows a job submitted through the API and follows it to completed without a reload', async () => {
    const { page, seen } = await openTab('/');
    await page.waitForSelector('#conn.live');
    await page.evaluate(() => {
      (globalThis as unknown as { __sameDocument: boolean }).__sameDocument = true;
    });
    const id = await submitOk(
      bed.base,
      manifestOf((s, i) => bed.images.url(`/gate/live1/png/${s}/${i}.png`), 3, 5),
    );
    const row = page.locator(`tr[data-job="${id}"]`);
    await row.locator('.badge.ongoing').waitFor();
    bed.images.gate('live1').open();
    await row.locator('.badge.completed').waitFor();
    const status = await call(bed.base, `/api/status?jobid=${id}`);
    const document = await results(bed.base, id);
    expect(status.body).toEqual({
      status: 'completed',
      job_id: String(id),
      counts: document.counts,
    });
    expect(await row.locator('.images-done').textContent()).toBe(String(document.counts.done));
    expect(await row.locator('.images-total').textContent()).toBe(String(document.counts.images));
    expect(await row.locator('.stores').textContent()).toBe('3 / 3');

    // Into the job page, still the same document (no reload), numbers as the results file.
    await row.locator('a').click();
    await page.waitForSelector('.summary dl');
    expectNumbers(await jobNumbers(page), document);
    expect(await cellCounts(page)).toEqual({ done: 15 });
    expect(
      await page.evaluate(
        () => (globalThis as unknown as { __sameDocument?: boolean }).__sameDocument,
      ),
    ).toBe(true);
    expect(seen.outside).toEqual([]);
    expect(seen.errors).toEqual([]);
    await leave(page);
  });

  it('shows a failing store first, with its error, its failed and its skipped cells', async () => {
    const id = await submitOk(
      bed.base,
      manifestOf(
        (s, i) => bed.images.url(s === 2 && i === 2 ? '/missing/x.png' : `/png/f/${s}/${i}.png`),
        3,
        4,
      ),
    );
    const document = await waitForJob(bed.base, id, finished);
    const { page, seen } = await openTab(`/jobs/${id}`);
    await page.waitForSelector('.failed-store');
    const error = document.stores[1]?.error ?? '';
    expect(error).toMatch(/HTTP 404/);
    expect(await page.locator('.failed-store .store-id').allTextContents()).toEqual(['S2']);
    expect(await page.locator('.failed-store .error').textContent()).toBe(error);
    expect(await cellCounts(page, '.failed-store')).toEqual({ done: 1, failed: 1, skipped: 2 });
    expectNumbers(await jobNumbers(page), document);
    // The failed cell tells its error on keyboard focus.
    await page.locator('.failed-store .cell.failed').focus();
    await expect.poll(() => page.locator('#cell-tip').isVisible()).toBe(true);
    const failedImage = document.stores[1]?.images[1];
    expect(failedImage?.status).toBe('failed');
    expect(await page.locator('#cell-tip').textContent()).toContain(
      failedImage?.status === 'failed' ? failedImage.error : '?',
    );
    expect(await page.locator('#cell-tip .tip-url').textContent()).toBe(failedImage?.url);
    expect(seen.outside).toEqual([]);
    await leave(page);
  });

  it('renders hostile store ids, URLs and errors as text, and runs no script of theirs', async () => {
    const manifest = manifestOf(
      (_s, i) => bed.images.url(i === 1 ? XSS_URL_PATH : '/missing/</script>.png'),
      1,
      2,
    );
    manifest.visits[0] = {
      ...manifest.visits[0],
      store_id: XSS_STORE,
      image_url: manifest.visits[0]?.image_url ?? [],
      visit_time: 'x',
    };
    const id = await submitOk(bed.base, manifest);
    const document = await waitForJob(bed.base, id, finished);
    const { page, seen } = await openTab(`/jobs/${id}`);
    await page.waitForSelector('.failed-store');
    expect(await page.locator('.failed-store .store-id').textContent()).toBe(XSS_STORE);
    expect(await page.locator('.store-table .store-id').textContent()).toBe(XSS_STORE);
    expect(await page.locator('.failed-store .error').textContent()).toBe(
      document.stores[0]?.error,
    );
    await page.locator('.store-table .cell').first().hover();
    expect(await page.locator('#cell-tip .tip-url').textContent()).toBe(
      document.stores[0]?.images[0]?.url,
    );
    expect(await page.locator('main img, main script').count()).toBe(0);
    expect(
      await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    // In the list too, searched by that store id.
    await page.goto(`${bed.base}/?q=${encodeURIComponent('<img')}`);
    await page.locator(`tr[data-job="${id}"]`).waitFor();
    expect(
      await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss),
    ).toBeUndefined();
    expect(seen.outside).toEqual([]);
    expect(seen.errors).toEqual([]);
    await leave(page);
  });

  it('writes screenshots of the jobs list and a job page, light and dark (and a phone)', async () => {
    const mixed = await submitOk(
      bed.base,
      manifestOf(
        (s, i) =>
          bed.images.url(
            s === 3 && i === 4
              ? '/missing/shot.png'
              : s >= 5 && i >= 6
                ? `/gate/shot/png/${s}/${i}.png`
                : `/png/shot/${s}/${i}.png`,
          ),
        8,
        12,
      ),
    );
    // S3 failed at its 4th image; S5–S8 wait at their 6th. (The job's
    // status has its counts: no results document per look.)
    await eventually(async () => {
      const { counts } = (await call(bed.base, `/api/status?jobid=${mixed}`)).body as {
        counts: Counts;
      };
      return [counts.done, counts.failed];
    }).toEqual([59, 1]);
    // One load for the six pictures: the colour scheme and the phone size are
    // set on the tab, and it goes from page to page by their links. Chromium
    // spends ~0.6 s of CPU on a load, ~0.2 s on a move inside the app.
    const { page, seen } = await openTab(`/jobs/${mixed}`);
    await page.waitForSelector('.store-table .cell');
    await page.locator('.store-table tr[data-store="S3"] .cell.failed').hover();
    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      await page.screenshot({ path: join(SCREENSHOTS, `job-${colorScheme}.png`), fullPage: true });
    }
    await page.locator('.crumbs a').click();
    await page.waitForSelector('tr[data-job]');
    await page.mouse.move(0, 0); // no hover left where the link was
    for (const colorScheme of ['dark', 'light'] as const) {
      await page.emulateMedia({ colorScheme });
      await page.screenshot({ path: join(SCREENSHOTS, `jobs-${colorScheme}.png`) });
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SCREENSHOTS, 'jobs-phone.png') });
    await page.locator(`tr[data-job="${mixed}"] a`).click();
    await page.waitForSelector('.store-table .cell');
    await page.mouse.move(0, 0);
    await page.screenshot({ path: join(SCREENSHOTS, 'job-phone.png'), fullPage: true });
    expect(seen.outside).toEqual([]);
    await leave(page);
    bed.images.gate('shot').open();
  });
});
