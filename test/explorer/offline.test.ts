import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer } from './seed.js';

/**
 * The Explorer works with no internet: every page route, loaded afresh in Chromium with every
 * non-loopback request aborted (and the host resolver answering nothing but localhost), asks for
 * nothing beyond this server, and throws no error and logs none. Every page it loads (scripts,
 * styles, workers, fonts, GraphQL, the WebSocket) comes from the server's own origin.
 */
test('every Explorer page loads offline: nothing requested beyond this server, no page or console errors', { timeout: 120_000 }, async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer, { auth: true });
  const browser = await openBrowser(defer, { name: 'offline' });
  // The key where the Explorer keeps it, before its scripts run (about:blank, between the pages, has no storage).
  await browser.context.addInitScript({ content: `if (location.protocol === 'http:') localStorage.setItem('tangent.apiKey', ${JSON.stringify(seed.keys!.admin)});` });
  const requested = new Set<string>();
  browser.context.on('request', (request) => requested.add(new URL(request.url()).origin));
  const sockets: string[] = [];
  browser.page.on('websocket', (socket) => sockets.push(new URL(socket.url()).host));

  const trainSample = seed.samples.find((s) => s.split === 'train')!;
  const routes: [string, string][] = [
    ['home', '#/'],
    ['run', `#/runs/${seed.runId}`],
    ['checkpoint', `#/checkpoints/${seed.checkpointId}`],
    ['sample', `#/samples/${trainSample.id}?checkpoint=${seed.checkpointId}`],
    ['selections', `#/selections?run=${seed.runId}`],
    ['jobs', '#/jobs'],
  ];
  const { page } = browser;
  t.diagnostic(`seeded in ${seed.seedMs} ms`);
  for (const [name, hash] of routes) {
    const started = performance.now();
    await page.goto('about:blank');
    await page.goto(`${seed.origin}/${hash}`, { waitUntil: 'networkidle' });
    // The page rendered: a heading in main, and not the not-found page or the key prompt.
    const heading = page.locator('main h1').first();
    await heading.waitFor();
    const title = await heading.innerText();
    assert.doesNotMatch(title, /^(Not found|API key needed)$/, `${name}: ${title}`);
    // Charts that draw say so; give those on the page the time to (they fetch nothing from outside either).
    for (const chart of await page.locator('[data-ready]').all()) await chart.and(page.locator('[data-ready="true"]')).waitFor({ timeout: 20_000 }).catch(() => undefined);
    await browser.screenshot(page, `offline-${name}`);
    t.diagnostic(`${name}: ${Math.round(performance.now() - started)} ms`);
    assert.deepEqual(browser.offHost, [], `${name}: nothing asked for beyond this server`);
    assert.deepEqual(browser.problems, [], `${name}: no console or page errors`);
  }
  assert.deepEqual([...requested].filter((origin) => origin !== seed.origin && origin !== 'null'), [], 'every request went to the server');
  assert.ok(sockets.every((host) => host === new URL(seed.origin).host), `WebSockets: ${sockets.join(', ')}`);
});
