import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { createApiKey } from '../../src/modules/api-keys/service.js';
import { startTestServer } from '../helpers/server.js';

/**
 * The GraphQL IDE in a real browser (Debian's Chromium) against a real server, with the network
 * cut to this machine: the page must load, build its editor and explorer from the schema, send the
 * headers its user types, and show what the API answers. Plain-HTTP checks of the same routes are
 * in ide-http.test.ts.
 */
const CHROMIUM = '/usr/bin/chromium';

/** The text of a Monaco editor as rendered (enough for a short result that fits the pane). */
async function editorText(page: Page, container: string): Promise<string> {
  return (await page.locator(`${container} .view-lines`).first().innerText()).replace(/\u00a0/g, ' ');
}

/** Replaces a Monaco editor's text as a user pasting it would (typing would fight auto-closed brackets). */
async function setEditorText(page: Page, container: string, text: string): Promise<void> {
  await page.locator(`${container} .monaco-editor .view-lines`).first().click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

test('the IDE runs offline in Chromium: loads only from this server, sends the typed headers, shows what the API answers', async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: the IDE is tested in a real browser. Install it with: apt-get install -y chromium`);

  // Undone last first, once the test is over however it ended: screenshot, browser, server.
  const cleanup: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  // API keys on, so the IDE works only if the headers a user types reach the server.
  const server = await startTestServer({ env: { TANGENT_AUTH: 'on' } });
  cleanup.push(() => server.close());
  const origin = new URL(server.url).origin;
  const admin = (await createApiKey(server.db, { name: 'admin', role: 'ADMIN' })).secret;
  const reader = (await createApiKey(server.db, { name: 'ide', role: 'READER' })).secret;
  await server.gql(
    `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`,
    { input: { name: 'ide-probe', length: 3, classNames: ['cat', 'dog'], samples: [{ index: 0, label: 1, series: [0.5, 1.5, -2] }] } },
    { authorization: `Bearer ${admin}` },
  );
  const query = '{ serverInfo { version } datasets { totalCount nodes { name classNames sampleCount } } }';
  const expected = await server.gql(query, {}, { authorization: `Bearer ${reader}` });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanup.push(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Only this machine is reachable: a CDN dependency fails here, and is listed.
  const offHost: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname) || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    offHost.push(url.href);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  // Screenshots: the query with its answer and the explorer, and the last screen whatever happens.
  const folder = mkdtempSync(join(tmpdir(), 'tangent-ide-'));
  cleanup.push(async () => {
    await page.screenshot({ path: join(folder, 'last.png') });
    t.diagnostic(`screenshots: ${folder}`);
  });
  const problems: string[] = [];
  // The API's answers to the page, by whether the request carried the key set in the headers tab.
  const apiStatuses = { withKey: [] as number[], withoutKey: [] as number[] };
  page.on('response', (response) => {
    const request = response.request();
    if (new URL(response.url()).pathname !== '/graphql' || request.method() !== 'POST') return;
    const withKey = request.headers().authorization === `Bearer ${reader}`;
    apiStatuses[withKey ? 'withKey' : 'withoutKey'].push(response.status());
  });
  const sockets: string[] = [];
  page.on('websocket', (socket) => sockets.push(socket.url()));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Monaco warns when it cannot start a worker; CSP refusals are console errors.
    const text = message.text();
    // (The browser also logs each 401 as an error; those are counted through apiStatuses.)
    if ((message.type() === 'error' && !/status of 401/.test(text)) || /web worker|Content Security Policy/i.test(text)) problems.push(`console ${message.type()}: ${text}`);
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`));

  // The IDE fetches the schema at once: without a key, refused.
  const firstSchemaFetch = page.waitForResponse((response) => new URL(response.url()).pathname === '/graphql' && response.request().method() === 'POST');
  await page.goto(`${origin}/graphql`);
  assert.equal(page.url(), `${origin}/graphql`);
  assert.equal((await firstSchemaFetch).status(), 401);
  await page.locator('.graphiql-query-editor .monaco-editor').waitFor({ timeout: 60_000 });

  // The headers tab: the reader's key, then the schema again (the first fetch had no key, and failed).
  await page.getByRole('button', { name: 'Headers', exact: true }).click();
  // Variables and headers share the pane; the one not shown is `.hidden`.
  const headers = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';
  await page.locator(`${headers} .monaco-editor`).waitFor();
  await setEditorText(page, headers, JSON.stringify({ authorization: `Bearer ${reader}` }));
  assert.deepEqual(JSON.parse(await editorText(page, headers)), { authorization: `Bearer ${reader}` });
  await page.getByRole('button', { name: /Re-fetch GraphQL schema/ }).click();

  // The query, run with Ctrl-Enter from the editor, and its result read off the response pane.
  await setEditorText(page, '.graphiql-query-editor', query);
  await page.getByRole('button', { name: /^Prettify query/ }).click();
  await page.locator('.graphiql-query-editor .view-line').nth(1).waitFor();
  await page.locator('.graphiql-query-editor .monaco-editor .view-lines').first().click();
  await page.keyboard.press('ControlOrMeta+Enter');
  await page.locator('.graphiql-response .view-lines').filter({ hasText: /"data"|"errors"/ }).waitFor({ timeout: 30_000 });
  const shown = JSON.parse(await editorText(page, '.graphiql-response'));
  assert.deepEqual(shown, { data: expected });

  // The explorer, built from the schema the key let it read: the root fields are there.
  await page.getByRole('button', { name: 'Show GraphiQL Explorer' }).click();
  const explorer = page.locator('.graphiql-explorer-root');
  await explorer.waitFor();
  await explorer.getByText('datasets', { exact: true }).first().waitFor();
  await explorer.getByText('serverInfo', { exact: true }).first().waitFor();
  await page.screenshot({ path: join(folder, 'query.png') });


  assert.deepEqual(problems.splice(0), [], 'no page errors, CSP refusals, worker fallbacks or failed requests');

  // Subscriptions go over graphql-ws on the page's own origin, with the headers as connectionParams:
  // a job that does not exist is NOT_FOUND (without the key the socket would be closed as unauthorized).
  await setEditorText(page, '.graphiql-query-editor', 'subscription WatchJob { jobProgress(id: "987654") { id status } }');
  // GraphiQL picks the transport from the document it parses 100 ms after an edit, and then names
  // the tab after the operation: once the tab reads WatchJob, Ctrl-Enter goes over the WebSocket.
  await page.locator('.graphiql-tab-button').filter({ hasText: 'WatchJob' }).waitFor();
  await page.keyboard.press('ControlOrMeta+Enter');
  await page.locator('.graphiql-response .view-lines').filter({ hasText: /jobProgress|"errors"|Unauthorized|closed/i }).waitFor({ timeout: 30_000 });
  const subscriptionShown = await editorText(page, '.graphiql-response');
  assert.match(subscriptionShown, /NOT_FOUND/, subscriptionShown);
  assert.deepEqual(sockets, [`ws://${new URL(origin).host}/graphql`]);

  assert.ok(apiStatuses.withoutKey.length > 0 && apiStatuses.withoutKey.every((status) => status === 401), `without the key: ${apiStatuses.withoutKey.join(', ')}`);
  assert.ok(apiStatuses.withKey.length >= 2 && apiStatuses.withKey.every((status) => status === 200), `with the key: ${apiStatuses.withKey.join(', ')}`);
  assert.deepEqual(offHost, [], 'the IDE asked for nothing beyond this server');
  // @graphiql/toolkit also rethrows a subscription's GraphQL errors (an array) as an unhandled
  // rejection once GraphiQL has shown them; anything else is a problem.
  assert.deepEqual(problems.filter((problem) => !/^page error: Array\(\d+\)$/.test(problem)), [], 'nothing went wrong during the subscription');
});
