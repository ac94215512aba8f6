/**
 * The dashboard's event stream in a real headless Chromium: one stream per
 * tab, a dropped stream that resumes without losing an event, Paused/Live.
 * (The rest of the dashboard is in dashboard.test.ts.)
 *
 * @module-tag e2e
 */
import { describe, expect, it } from 'vitest';

import { requireBrowser } from './helpers/browser.js';
import {
  cellCounts,
  dashboardBed,
  expectNumbers,
  jobNumbers,
  openPage,
} from './helpers/dashboard-bed.js';
import { finished, manifestOf, submitOk, waitForJob } from './helpers/serve-client.js';

const run = requireBrowser('dashboard-streams.test.ts');
const bed = dashboardBed('dashboard-streams', run, { concurrency: 16, timeoutMs: 20_000 });

describe.skipIf(!run)('the dashboard event stream in Chromium', () => {
  it('keeps one event stream per tab, and a dropped stream resumes without losing an event', async () => {
    const id = await submitOk(
      bed.base,
      manifestOf((s, i) => bed.images.url(`/gate/drop-${i}/png/${s}/${i}.png`), 2, 3),
    );
    // No stream is open before this case's tabs (none left by another case).
    await expect.poll(() => bed.server.dashboard.streamCount).toBe(0);
    const before = 0;
    const first = await openPage(bed, '/');
    const second = await openPage(bed, `/jobs/${id}`);
    await first.page.waitForSelector('#conn.live');
    await second.page.waitForSelector('#conn.live');
    expect(bed.server.dashboard.streamCount).toBe(before + 2);
    // Moving around inside a tab swaps its stream, never adds one. The tab is
    // brought to the front first: a tab behind another gets no animation
    // frames, and a click waits for two of them (~2 s) to see the link still.
    await first.page.bringToFront();
    await first.page.locator(`tr[data-job="${id}"] a`).click();
    await first.page.waitForSelector('.summary dl');
    await first.page.locator('.crumbs a').click();
    await first.page.waitForSelector('tr[data-job]');
    await expect.poll(() => bed.server.dashboard.streamCount).toBe(before + 2);
    await first.page.close();

    const { page } = second;
    bed.images.gate('drop-1').open();
    await expect.poll(() => cellCounts(page)).toMatchObject({ done: 2 });
    const loads: string[] = [];
    const reconnects: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.pathname.endsWith('/results')) loads.push(url.pathname);
      if (url.pathname === '/api/events') reconnects.push(url.search);
    });
    bed.server.dashboard.dropStreams();
    bed.images.gate('drop-2').open();
    bed.images.gate('drop-3').open();
    const document = await waitForJob(bed.base, id, finished);
    await expect.poll(() => cellCounts(page)).toEqual({ done: 6 });
    expectNumbers(await jobNumbers(page), document);
    // The browser reconnected by itself (its Last-Event-ID header is added below what
    // playwright sees) and caught up from the replayed events alone: a stream the
    // server could not resume would have made the page load the results again.
    expect(reconnects).toEqual([`?job=${id}`]);
    expect(loads).toEqual([]);
    await page.close();
  });

  it('stops updating when Paused, and catches up when Live again', async () => {
    const id = await submitOk(
      bed.base,
      manifestOf((s, i) => bed.images.url(`/gate/pause-${i}/png/${s}/${i}.png`), 2, 2),
    );
    const { page, seen } = await openPage(bed, `/jobs/${id}`);
    await page.waitForSelector('#conn.live');
    bed.images.gate('pause-1').open();
    await expect.poll(() => cellCounts(page)).toMatchObject({ done: 2 });
    await page.locator('#live-toggle').click();
    await page.waitForSelector('#conn.paused');
    expect(await page.locator('#live-toggle').getAttribute('aria-pressed')).toBe('false');
    const streams = bed.server.dashboard.streamCount;
    bed.images.gate('pause-2').open();
    const document = await waitForJob(bed.base, id, finished);
    bed.server.dashboard.tick();
    // The job is finished on the server; the paused page still shows it as it was.
    expect(await cellCounts(page)).toMatchObject({ done: 2 });
    expect(await page.locator('h1 .badge').textContent()).toBe('ongoing');
    const resumed = page.waitForRequest((request) =>
      new URL(request.url()).searchParams.has('last_event_id'),
    );
    await page.locator('#live-toggle').click();
    await resumed;
    await expect.poll(() => cellCounts(page)).toEqual({ done: 4 });
    await page.locator('h1 .badge.completed').waitFor();
    expectNumbers(await jobNumbers(page), document);
    expect(bed.server.dashboard.streamCount).toBeGreaterThanOrEqual(streams);
    expect(seen.outside).toEqual([]);
    await page.close();
  });
});
