/**
 * A real headless Chromium for the dashboard tests, through playwright-core
 * and Debian's `chromium` package (never a downloaded browser). Launched for
 * a machine with no network: no sandbox (CI runs as root), no background
 * networking, a fresh profile that playwright removes afterwards.
 *
 * One Chromium serves every file a vitest worker runs (with `isolate: false`
 * this module, and so the browser, outlives a file): a launch costs ~0.7 s
 * of CPU, a context ~0.1 s. Each file gets a context of its own
 * (cookies, storage, cache, routes), closed with the file, so nothing passes
 * from one file to the next. The browser closes when vitest ends the worker.
 *
 * Without the browser the tests skip with one line — except under CI=true,
 * where a missing browser fails the suite (`requireBrowser()` throws).
 */
import { existsSync } from 'node:fs';

import {
  chromium,
  type Browser,
  type BrowserContext,
  type Page,
  type Request,
} from 'playwright-core';

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

/** A context of its own in the worker's Chromium: closing it leaves the browser to the next file. */
export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await workerBrowser();
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    // The pulse of an image in flight would have Chromium draw 60 frames a
    // second for as long as a gate holds it (~45 ms of CPU a second).
    reducedMotion: 'reduce',
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
    },
  };
}

let launched: Promise<Browser> | undefined;

function workerBrowser(): Promise<Browser> {
  launched ??= launchWorkerBrowser().catch((error: unknown) => {
    launched = undefined;
    throw error;
  });
  return launched;
}

async function launchWorkerBrowser(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Vitest ends a worker with SIGTERM (SIGKILL 500 ms later); playwright's
    // own SIGTERM handler would close the browser but leave the worker alive.
    handleSIGTERM: false,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
      // The omnibox popups are pages of their own (chrome://omnibox-popup.top-chrome),
      // made with every window, that headless Chromium 156 renders for no one:
      // ~0.5 s of CPU per tab opened, and ~0.1 s per second it stays open.
      '--disable-features=Translate,MediaRouter,OptimizationHints,WebUIOmniboxPopup,WebUIOmniboxAimPopup',
    ],
  });
  // A browser that went away (crashed) is launched again by the next file.
  browser.once('disconnected', () => {
    launched = undefined;
  });
  // Closed, not killed, as the worker ends: the worker waits for Chromium,
  // so its CPU counts in the run's, and playwright removes its profile.
  // Vitest kills the worker 500 ms after SIGTERM, which a loaded machine's
  // close can outlast: by then the worker exits, and playwright's exit hook
  // kills Chromium and removes the profile at once (else left in /tmp).
  process.once('SIGTERM', () => {
    setTimeout(() => process.exit(143), 400).unref();
    void browser.close().finally(() => process.exit(143));
  });
  return browser;
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
