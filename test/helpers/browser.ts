/**
 * A real browser for the web tests: Debian's Chromium (`/usr/bin/chromium`, which `.ci/run` installs)
 * driven by playwright-core, with the network cut to this machine.
 *
 *     const browser = await openBrowser(t, options?);
 *     //   t:        the test's context (its `after` hook closes everything), or the test's
 *     //             `cleanupStack(t)` to close the browser in order with what else the test started
 *     //             (open the browser after the server: the stack closes it first)
 *     //   options:  { viewport?: { width, height } (default 1400 × 900),
 *     //               ignoreConsole?: RegExp[] (console errors that are expected, e.g. a 401 the test provokes) }
 *     const page = browser.page;                     // a first page; browser.newPage() for more
 *     await page.goto(`${origin}/#/runs/${runId}`);
 *     await browser.screenshot(page, 'run');         // test-artifacts/explorer/run.png
 *     assert.deepEqual(browser.offHost, []);         // non-loopback requests: aborted, and listed here
 *     assert.deepEqual(browser.problems, []);        // console errors, page errors (uncaught exceptions)
 *
 * Every request (page, fetch, worker, WebSocket) to a host other than 127.0.0.1, localhost or [::1]
 * is aborted and its URL recorded in `offHost`; Chromium is also started with a host resolver that
 * resolves no name but localhost, so a request that slipped past the routing could not reach anything
 * either. `failedRequests` lists every request that failed (the aborted ones included, and the ones
 * a page cancels itself). Screenshots also go to `$TANGENT_SCREENSHOTS/<name>.png` when that variable
 * names a folder (how the README's screenshots are made: scripts/screenshots.ts). The browser is
 * closed once the test is over, however it ended, after a last screenshot of each open page
 * (`<name>-last.png`, name from options.name or 'page').
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { cleanupStack, type Defer, type Hooks } from './cleanup.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Chromium's flags: no sandbox (tests run as root in CI), no GPU, and none of its own traffic to Google. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Names other than localhost resolve to nothing, whatever the routing below misses.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]',
];

const REPOSITORY = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where screenshots go (gitignored): CI keeps the folder as an artifact. */
export const ARTIFACTS = join(REPOSITORY, 'test-artifacts', 'explorer');

export interface BrowserOptions {
  viewport?: { width: number; height: number };
  /** Console errors matching one of these are not problems (e.g. the 401 a test provokes on purpose). */
  ignoreConsole?: RegExp[];
  /** Prefix of the last screenshot taken of each page when the test ends (default 'page'). */
  name?: string;
}

export interface OpenBrowser {
  browser: Browser;
  context: BrowserContext;
  /** A first page of the context. */
  page: Page;
  newPage(): Promise<Page>;
  /** Every non-loopback URL a page or worker asked for (each aborted). Stays empty for an offline app. */
  offHost: string[];
  /** Console errors and uncaught page errors, as `console error: …` / `page error: …` lines. */
  problems: string[];
  /** Requests that failed: `url (error text)`. */
  failedRequests: string[];
  /** Saves a PNG of the page to test-artifacts/explorer/<name>.png (and $TANGENT_SCREENSHOTS/<name>.png); returns its path. */
  screenshot(page: Page, name: string, options?: { fullPage?: boolean }): Promise<string>;
  /** Closes the browser now (the test's cleanup then does nothing). */
  close(): Promise<void>;
}

/** Loopback, or no network at all (data:, blob:, about:). */
export function isLocal(href: string): boolean {
  const url = new URL(href);
  if (['data:', 'blob:', 'about:', 'chrome-extension:'].includes(url.protocol)) return true;
  return ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

export async function openBrowser(t: Hooks | Defer, options: BrowserOptions = {}): Promise<OpenBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the web pages are tested in a real browser. Install it with: apt-get install -y chromium`);
  }
  const defer: Defer = typeof t === 'function' ? t : cleanupStack(t);
  const browser = defer(await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS }), (b) => b.close());
  const offHost: string[] = [];
  const problems: string[] = [];
  const failedRequests: string[] = [];
  const ignored = (text: string) => (options.ignoreConsole ?? []).some((re) => re.test(text));
  const screenshotFolders = [ARTIFACTS, ...(process.env.TANGENT_SCREENSHOTS ? [resolve(REPOSITORY, process.env.TANGENT_SCREENSHOTS)] : [])];
  const screenshot = async (page: Page, name: string, shot: { fullPage?: boolean } = {}, folders = screenshotFolders) => {
    if (!/^[\w.-]+$/.test(name) || isAbsolute(name)) throw new Error(`screenshot name ${JSON.stringify(name)}: letters, digits, '.', '-' and '_' only`);
    let first = '';
    for (const folder of folders) {
      mkdirSync(folder, { recursive: true });
      const path = join(folder, `${name}.png`);
      await page.screenshot({ path, fullPage: shot.fullPage ?? false });
      first ||= path;
    }
    return first;
  };

  const context = await browser.newContext({ viewport: options.viewport ?? { width: 1400, height: 900 } });
  // Before the browser closes: a last screenshot of every page still open, for a test that failed mid-way.
  defer(context, async (c) => {
    const prefix = options.name ?? 'page';
    await Promise.all(c.pages().map((page, i) => screenshot(page, `${prefix}-last${i ? `-${i}` : ''}`, {}, [ARTIFACTS]).catch(() => undefined)));
  });
  await context.route(
    (url) => !isLocal(url.href),
    (route) => {
      offHost.push(route.request().url());
      return route.abort('internetdisconnected');
    },
  );
  await context.routeWebSocket(
    (url) => !isLocal(url.href.replace(/^ws/, 'http')),
    (ws) => {
      offHost.push(ws.url());
      return ws.close({ code: 1008, reason: 'offline test' });
    },
  );
  context.on('console', (message) => {
    if (message.type() === 'error' && !ignored(message.text())) problems.push(`console error: ${message.text()}`);
  });
  context.on('weberror', (error) => problems.push(`page error: ${error.error().message}`));
  context.on('requestfailed', (request) => failedRequests.push(`${request.url()} (${request.failure()?.errorText})`));
  let closed = false;
  const page = await context.newPage();
  return {
    browser,
    context,
    page,
    newPage: () => context.newPage(),
    offHost,
    problems,
    failedRequests,
    screenshot: (page, name, shot) => screenshot(page, name, shot),
    async close() {
      if (closed) return;
      closed = true;
      await browser.close();
    },
  };
}
