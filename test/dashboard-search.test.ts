/**
 * The job page's search over the stores and errors of a 100,000-store job,
 * in a real headless Chromium: run on the server, a page at a time (the
 * browser never filters the whole job).
 *
 * @module-tag e2e
 */
import { describe, expect, it } from 'vitest';

import type { StorePage } from '../src/shared/api-shapes.js';
import { guardPage, requireBrowser } from './helpers/browser.js';
import { dashboardBedWith, eventually, type DashboardBed } from './helpers/dashboard-bed.js';
import { call } from './helpers/serve-client.js';
import { until } from './helpers/until.js';

const run = requireBrowser('dashboard-search.test.ts');

/**
 * The job the file searches, submitted while Chromium starts: 100,000 stores,
 * the first failed at once, the others waiting at a gate that never opens (or
 * for a slot). Resolves with its id once the failure is written: the searches
 * read the database.
 */
async function bigJob(servers: Omit<DashboardBed, 'browser'>): Promise<number> {
  servers.images.gate('big'); // never opened: most stores stay pending
  // Spelt as text: 100,000 URL objects and a JSON.stringify cost ~0.7 s of CPU.
  const gate = servers.images.url('/gate/big/');
  const visits = [
    `{"store_id":"STORE-000000","image_url":["${servers.images.url('/status/404')}"]}`,
  ];
  for (let n = 1; n < 100_000; n++)
    visits.push(
      `{"store_id":"STORE-${String(n).padStart(6, '0')}","image_url":["${gate}${n}.png"]}`,
    );
  // Handed to the job service as the submit route hands a request body: what
  // this file is about is the search (the route has its tests in serve-api).
  const id = await servers.server.service.submit(
    Buffer.from(`{"count":${visits.length},"visits":[${visits.join(',')}]}`),
  );
  // Its failure counted (a status poll is cheap where a search over 100k
  // stores is not), then written.
  await until(() => servers.server.service.status(id)?.counts.failed === 1, 'the first failure');
  await servers.server.service.written();
  return id;
}

const bed = dashboardBedWith('dashboard-search', run, {}, bigJob);

describe.skipIf(!run)('searching a 100,000-store job', () => {
  it('finds stores and errors on the server, a page at a time', async () => {
    const id = bed.prepared;
    // The tab opens in Chromium's processes while the server answers the searches.
    const opening = bed.browser.page();
    const search = async (query: string): Promise<StorePage> => {
      const started = performance.now();
      const reply = await call(bed.base, `/api/jobs/${id}/stores?${query}`);
      expect(reply.status).toBe(200);
      // The bound for a search over 100k stores.
      expect(performance.now() - started).toBeLessThan(1000);
      return reply.body as StorePage;
    };
    const first = await search('q=store-0999&limit=5');
    expect(first.total).toBe(100);
    expect(first.stores.map((store) => store.store_id)).toEqual([
      'STORE-099900',
      'STORE-099901',
      'STORE-099902',
      'STORE-099903',
      'STORE-099904',
    ]);
    const second = await search(`q=store-0999&limit=5&after=${first.next_after}`);
    expect(second.stores[0]?.store_id).toBe('STORE-099905');
    const errors = await search('q=404%20Not%20Found');
    expect(errors).toMatchObject({ total: 1, next_after: null });
    expect(errors.stores[0]).toMatchObject({
      store_id: 'STORE-000000',
      status: 'failed',
      counts: { images: 1, failed: 1 },
    });
    // A LIKE wildcard is taken as text.
    expect((await search('q=%25')).total).toBe(0);

    const page = await opening;
    await guardPage(page, bed.base);
    await page.goto(`${bed.base}/jobs/${id}`);
    await page.waitForSelector('.summary dl');
    await page.fill('#store-search', 'store-0999');
    await eventually(() => page.locator('.match-count').textContent()).toBe('100 stores match');
    expect(await page.locator('.search-table tbody tr').count()).toBe(50);
    await page.getByRole('button', { name: 'More' }).click();
    await eventually(() => page.locator('.search-table tbody tr').count()).toBe(100);
    expect(await page.locator('.search-table tbody tr').last().getAttribute('data-store')).toBe(
      'STORE-099999',
    );
    await page.fill('#store-search', 'not found');
    await eventually(() => page.locator('.match-count').textContent()).toBe('1 store matches');
    await page.close();
  }, 60_000);
});
