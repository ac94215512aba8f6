/**
 * The job page as a place to act from, in a real headless Chromium: failed
 * images grouped by error code, a Retry button that takes the failed stores
 * up again, a Cancel button (its job then shows its own `cancelled` badge),
 * both disabled while one runs, refused to other origins and without the
 * page's token. (The search is in dashboard-search.test.ts.)
 *
 * @module-tag e2e
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Route } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { guardPage, requireBrowser } from './helpers/browser.js';
import { dashboardBed, eventually } from './helpers/dashboard-bed.js';
import { call, finished, submitOk, waitForJob } from './helpers/serve-client.js';

/** What the page functions below use of the DOM (this Node program has no DOM types). */
declare const getComputedStyle: (node: unknown) => { readonly color: string };
type Text = { readonly textContent: string | null };

const run = requireBrowser('dashboard-actions.test.ts');
const SCREENSHOTS = join(process.cwd(), 'test-output', 'screenshots');
beforeAll(() => {
  mkdirSync(SCREENSHOTS, { recursive: true });
});
// A gated image waits for the cancel, however long a loaded machine takes
// to get there: under the default 5 s download timeout the job could fail on
// its own first (seen under a load of ~20: badge "failed", Cancel disabled).
const bed = dashboardBed('dashboard-actions', run, { timeoutMs: 60_000 });

function manifest(stores: Record<string, string[]>) {
  const visits = Object.entries(stores).map(([store_id, paths]) => ({
    store_id,
    image_url: paths.map((path) => bed.images.url(path)),
  }));
  return { count: visits.length, visits };
}

async function open(path: string) {
  const page = await bed.browser.page();
  const seen = await guardPage(page, bed.base);
  await page.goto(`${bed.base}${path}`);
  await page.waitForSelector('.summary dl');
  return { page, seen };
}

/** Holds the page's next POST to `action` until the test lets it go. */
async function holdAction(
  page: import('playwright-core').Page,
  action: string,
): Promise<{ readonly held: Promise<Route> }> {
  let hold: (route: Route) => void = () => undefined;
  const held = new Promise<Route>((resolve) => (hold = resolve));
  await page.route(`**/api/jobs/*/${action}`, (route) => {
    hold(route);
  });
  return { held };
}

describe.skipIf(!run)('the job page acts', () => {
  it('groups failed images by error code, and Retry takes the failed stores up again', async () => {
    const id = await submitOk(
      bed.base,
      manifest({
        OK1: ['/img/image.png', '/img/image.gif'],
        OK2: ['/img/image.bmp'],
        // Each fails once, then serves its image: a retry completes them.
        FLAKY1: ['/img/image.png', '/flaky/1/retry-a/image.png', '/img/image.gif'],
        FLAKY2: ['/flaky/1/retry-b/image.png?fail=404'],
        // Never an image: fails again after the retry.
        HTML: ['/html'],
      }),
    );
    const before = await waitForJob(bed.base, id, finished);
    expect(before.status).toBe('failed');

    const { page, seen } = await open(`/jobs/${id}`);
    const groups = await page.$$eval('.error-groups tbody tr', (rows) =>
      rows.map((row) =>
        Array.from((row as unknown as { children: ArrayLike<Text> }).children)
          .slice(0, 3)
          .map((cell) => cell.textContent),
      ),
    );
    expect(groups).toEqual([
      ['E_HTTP_STATUS', '2', '2'],
      ['E_NOT_IMAGE', '1', '1'],
    ]);
    const cancel = page.getByRole('button', { name: 'Cancel job' });
    const retry = page.getByRole('button', { name: 'Retry failed stores' });
    expect(await cancel.isDisabled()).toBe(true);
    expect(await retry.isEnabled()).toBe(true);
    await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-actions.png'), fullPage: true });

    const { held } = await holdAction(page, 'retry');
    await retry.click();
    const route = await held;
    // One action at a time: both buttons wait for the answer.
    expect(await retry.isDisabled()).toBe(true);
    expect(await cancel.isDisabled()).toBe(true);
    expect(await page.locator('.actions').getAttribute('aria-busy')).toBe('true');
    // Sent as the page's own request, with its token.
    expect(route.request().method()).toBe('POST');
    expect(route.request().headers()['x-imgjob-token']).toMatch(/^[\w.-]{20,}$/);
    await route.continue();

    await eventually(() => page.locator('.action-message').textContent()).toBe(
      `job ${id}: 3 failed stores taken up again`,
    );
    const after = await waitForJob(bed.base, id, finished);
    expect(Object.fromEntries(after.stores.map((store) => [store.store_id, store.status]))).toEqual(
      {
        OK1: 'completed',
        OK2: 'completed',
        FLAKY1: 'completed',
        FLAKY2: 'completed',
        HTML: 'failed',
      },
    );
    // Done images were kept: FLAKY1's first image was not fetched again.
    expect(bed.images.requestsTo('/img/image.png').length).toBe(2);
    await eventually(() =>
      page.$$eval('.error-groups tbody tr th', (cells) =>
        cells.map((cell) => (cell as unknown as Text).textContent),
      ),
    ).toEqual(['E_NOT_IMAGE']);
    await eventually(() => page.locator('h1 .badge').textContent()).toBe('failed');
    expect(seen.outside).toEqual([]);
    expect(seen.errors).toEqual([]);
    await page.close();
  });

  it('Cancel stops a running job, which then shows its own badge, not failed', async () => {
    bed.images.gate('cancel'); // never opened: the job runs until it is cancelled
    const id = await submitOk(
      bed.base,
      manifest({
        A: ['/img/image.png', '/gate/cancel/image.png'],
        B: ['/gate/cancel/image.gif', '/img/image.png'],
        C: ['/img/image.bmp'],
      }),
    );
    await waitForJob(bed.base, id, (doc) => doc.counts.done >= 2);
    const { page, seen } = await open(`/jobs/${id}`);
    const cancel = page.getByRole('button', { name: 'Cancel job' });
    const retry = page.getByRole('button', { name: 'Retry failed stores' });
    await eventually(() => cancel.isEnabled()).toBe(true);
    expect(await retry.isDisabled()).toBe(true);

    page.once('dialog', (dialog) => void dialog.accept());
    const { held } = await holdAction(page, 'cancel');
    await cancel.click();
    const route = await held;
    expect(await cancel.isDisabled()).toBe(true);
    expect(await retry.isDisabled()).toBe(true);
    await route.continue();

    await eventually(() => page.locator('h1 .badge').textContent()).toBe('cancelled');
    const document = await waitForJob(bed.base, id, finished);
    expect(document.status).toBe('failed');
    expect(document.stores.filter((store) => store.error === 'cancelled')).toHaveLength(2);
    // Found and read in one step: the page redraws its header as events come,
    // and a badge read after it was replaced has no colour ('').
    const colour = (selector: string) =>
      page.$eval(selector, (node) => getComputedStyle(node).color);
    // A badge the page is redrawing may have no computed colour yet (''):
    // the first read that has one is the one compared.
    let cancelledColour = '';
    await eventually(async () => (cancelledColour = await colour('h1 .badge'))).not.toBe('');
    // The jobs list says it too, in the same colour, unlike a failed job's.
    await page.goto(`${bed.base}/`);
    const row = page.locator(`tr[data-job="${id}"] .badge`);
    await eventually(() => row.textContent()).toBe('cancelled');
    expect(await colour(`tr[data-job="${id}"] .badge`)).toBe(cancelledColour);
    const failedBadge = page.locator('tbody .badge.failed').first();
    if ((await failedBadge.count()) > 0)
      expect(await colour('tbody .badge.failed')).not.toBe(cancelledColour);
    // The rate counts work: the images the cancel skipped are no burst of speed.
    const timeline = (await call(bed.base, `/api/jobs/${id}/timeline`)).body as {
      samples: [number, number][];
    };
    const worked = document.counts.done + document.counts.failed;
    expect(Math.max(...timeline.samples.map(([, n]) => n))).toBeLessThanOrEqual(worked);
    // And it ends where the job did, not when a page last looked (the list just did).
    const end = Date.parse(document.finished_at ?? '');
    expect(Math.max(...timeline.samples.map(([t]) => t))).toBeLessThanOrEqual(end);
    expect(seen.errors).toEqual([]);
    await page.close();
  });

  it('refuses the actions from another origin, without an Origin, and without the page token', async () => {
    const id = await submitOk(bed.base, manifest({ S: ['/img/image.png'] }));
    await waitForJob(bed.base, id, finished);
    const page = await (await fetch(`${bed.base}/jobs/${id}`)).text();
    const token = /name="imgjob-page-token" content="([^"]+)"/.exec(page)?.[1] ?? '';
    expect(token).not.toBe('');
    const origin = new URL(bed.base).origin;
    const post = (headers: Record<string, string>) =>
      call(bed.base, `/api/jobs/${id}/retry`, { method: 'POST', headers });
    expect((await post({ 'x-imgjob-token': token })).status).toBe(403);
    expect((await post({ origin: 'http://evil.example', 'x-imgjob-token': token })).status).toBe(
      403,
    );
    expect((await post({ origin })).status).toBe(403);
    expect((await post({ origin, 'x-imgjob-token': `${token.slice(0, -2)}xx` })).status).toBe(403);
    const ok = await post({ origin, 'x-imgjob-token': token });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      job_id: String(id),
      message: `job ${id} has no failed store to retry`,
    });
    expect((await call(bed.base, `/api/jobs/${id}/cancel`)).status).toBe(405);
    // Each page its own token.
    const again = await (await fetch(`${bed.base}/jobs/${id}`)).text();
    expect(again).not.toContain(token);
  });
});
