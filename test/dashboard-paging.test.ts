/**
 * The jobs list over 1,000 jobs in a real headless Chromium: keyset paging
 * newest first, the status filter and its counts, search by store id and by
 * job id. (The rest of the dashboard is in dashboard.test.ts and
 * dashboard-streams.test.ts.)
 *
 * @module-tag e2e
 */
import { describe, expect, it } from 'vitest';

import { guardPage, requireBrowser } from './helpers/browser.js';
import { dashboardBedWith, type DashboardBed } from './helpers/dashboard-bed.js';
import type { FaultServer } from './helpers/fault-server.js';
import { call, manifestOf } from './helpers/serve-client.js';

/** The little of the DOM the page functions below use (this Node program has no DOM types). */
declare const document: {
  querySelector(selector: string): Row | null;
  querySelectorAll(selector: string): { readonly length: number };
};
type Row = { getAttribute(name: string): string | null };

const run = requireBrowser('dashboard-paging.test.ts');

const JOBS = 1000;

/** Job `m`: one store `P-0m`, one image; every tenth job's image is missing (the job fails). */
function jobManifest(images: FaultServer, m: number) {
  const manifest = manifestOf(
    (s, i) => images.url(m % 10 === 0 ? `/missing/${m}.png` : `/png/p/${m}/${s}/${i}.png`),
    1,
    1,
  );
  manifest.visits[0] = {
    ...manifest.visits[0],
    store_id: `P-${String(m).padStart(4, '0')}`,
    image_url: manifest.visits[0]?.image_url ?? [],
    visit_time: 'x',
  };
  return manifest;
}

/**
 * The 1,000 jobs, submitted while Chromium starts; resolves with their ids.
 * Handed to the server's job service as the submit route hands a request
 * body: what this file is about is the list, and 1,000 HTTP round trips
 * cost ~2.5 s of CPU (the route has its tests in serve-api.test.ts).
 */
function submitJobs({ server, images }: Omit<DashboardBed, 'browser'>): Promise<number[]> {
  return Promise.all(
    Array.from({ length: JOBS }, (_, m) =>
      server.service.submit(Buffer.from(JSON.stringify(jobManifest(images, m)))),
    ),
  );
}

const bed = dashboardBedWith(
  'dashboard-paging',
  run,
  { concurrency: 16, timeoutMs: 20_000 },
  submitJobs,
);

async function totals(): Promise<Record<string, number>> {
  return (
    (await call(bed.base, '/api/overview?limit=1')).body as { totals: Record<string, number> }
  ).totals;
}

describe.skipIf(!run)('the jobs list in Chromium', () => {
  it('searches, filters by status and pages through 1,000 jobs', async () => {
    const ids = bed.prepared;
    // The tab opens in Chromium's processes while the jobs run.
    const opening = bed.browser.page();
    // One look at the totals per poll, not a results document per job.
    await expect.poll(async () => (await totals()).ongoing, { timeout: 60_000 }).toBe(0);
    const counts = await totals();
    // The list holds these jobs and no other: ids 1 to 1,000.
    expect(counts.all).toBe(JOBS);
    expect(Math.min(...ids)).toBe(1);
    const newest = Math.max(...ids);
    expect(newest).toBe(JOBS);

    const page = await opening;
    const seen = await guardPage(page, bed.base);
    await page.goto(`${bed.base}/`);
    const rowIds = (): Promise<number[]> =>
      page.$$eval('tr[data-job]', (rows) =>
        rows.map((row) => Number((row as unknown as Row).getAttribute('data-job'))),
      );
    await page.waitForSelector('tr[data-job]');
    expect((await rowIds())[0]).toBe(newest);
    expect(await rowIds()).toHaveLength(50);
    // Older pages, by keyset: every job once, newest first, none missed.
    const seenIds: number[] = [];
    for (let pages = 0; pages < 5; pages++) {
      const now = await rowIds();
      seenIds.push(...now);
      await page.locator('.pager a[rel="next"]').click();
      await page.waitForFunction(
        (last) => Number(document.querySelector('tr[data-job]')?.getAttribute('data-job')) < last,
        now.at(-1) ?? 0,
      );
    }
    expect(seenIds).toEqual(seenIds.map((_, k) => newest - k));

    // Status filter.
    await page.locator('.filter.failed').click();
    await page.waitForFunction(
      () => document.querySelectorAll('tr[data-job]:not([data-status="failed"])').length === 0,
    );
    expect(await page.locator('.filter.failed .n').textContent()).toBe(String(counts.failed));
    expect(await page.locator('.filter.failed').getAttribute('aria-current')).toBe('true');
    expect(counts.failed).toBeGreaterThanOrEqual(100);
    expect(new URL(page.url()).searchParams.get('status')).toBe('failed');

    // Search by store id (typed), then by job id.
    await page.locator('.filter.all').click();
    await page.locator('#search').fill('P-0777');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-job]').length === 1);
    expect(await rowIds()).toEqual([ids[777]]);
    await page.locator('#search').fill(String(ids[123]));
    await page.waitForFunction(
      (id) => document.querySelector('tr[data-job]')?.getAttribute('data-job') === String(id),
      ids[123],
    );
    expect(await rowIds()).toEqual([ids[123]]);
    await page.locator('#search').fill('no-such-store');
    await page.waitForSelector('p.note:text("No job matches.")');
    expect(seen.outside).toEqual([]);
    expect(seen.errors).toEqual([]);
    await page.close();
  }, 90_000);
});
