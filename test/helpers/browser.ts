/**
 * A real headless Chromium for the dashboard tests, through playwright-core
 * and Debian's `chromium` package (never a downloaded browser). Launched for
 * a machine with no network: no sandbox (CI runs as root), no background
 * networking, a fresh user-data dir that is removed afterwards.
 *
 * Without the browser the tests skip with one line — except under CI=true,
 * where a missing browser fails the suite (`requireBrowser()` throws).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium, type BrowserContext, type Page, type Request } from 'playwright-core';

export const CHROMIUM_PATH = process.env.IMGJOB_CHROMIUM ?? '/usr/bin/chromium';

/** Whether the browser tests can run here. */
export const hasBrowser = existsSync(CHROMIUM_PATH);

/** Fails under CI when the browser is missing; elsewhere says once why the tests skip. */
export function requireBrowser(file: string): boolean {
  if (hasBrowser) return true;
  if (process.env.CI === 'true' || process.env.CI === '1')
    throw new Error(
      `${CHROMIUM_PATH} is missing: CI must run the browser tests (.ci/run installs chromium)`,
    );
  console.warn(
    `${file}: skipping the browser tests: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium)`,
  );
  return false;
}

export type TestBrowser = {
  readonly context: BrowserContext;
  /** A new tab at 1280×800 (or `viewport`), light or dark. */
  page(options?: {
    readonly colorScheme?: 'light' | 'dark';
    readonly viewport?: { width: number; height: number };
  }): Promise<Page>;
  close(): Promise<void>;
};

export async function launchBrowser(): Promise<TestBrowser> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'imgjob-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
    ],
  });
  return {
    context,
    async page(options = {}) {
      const page = await context.newPage();
      if (options.viewport) await page.setViewportSize(options.viewport);
      await page.emulateMedia({ colorScheme: options.colorScheme ?? 'light' });
      return page;
    },
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Fails every request that leaves `allowedOrigin` (abort + record), and
 * every script error or CSP violation the page reports. Returns what it saw.
 */
export async function guardPage(
  page: Page,
  allowedOrigin: string | ((url: URL) => boolean),
): Promise<{
  readonly outside: string[];
  readonly errors: string[];
  readonly requests: Request[];
}> {
  const seen = { outside: [] as string[], errors: [] as string[], requests: [] as Request[] };
  const allowed =
    typeof allowedOrigin === 'string' ? (url: URL) => url.origin === allowedOrigin : allowedOrigin;
  await page.route('**/*', async (route) => {
    const url = new URL(route.request().url());
    if (allowed(url)) await route.continue();
    else {
      seen.outside.push(url.href);
      await route.abort('blockedbyclient');
    }
  });
  page.on('request', (request) => seen.requests.push(request));
  page.on('pageerror', (error) => seen.errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') seen.errors.push(message.text());
  });
  return seen;
}
