import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer } from './seed.js';

/**
 * The selection builder in Chromium against a seeded server with API keys on: a strategy built in the
 * form (balanced top 12 by kNorm over the run's three analysis checkpoints, custom weights, train
 * split only) is previewed with the class counts the API gives for the same strategy, saved, and
 * listed with the class counts the API stored; its CSV export, downloaded through the page's link,
 * and its JSONL export, fetched from the link's address, hold as many rows as the selection. A
 * READER's key shows the list and the exports but no way to save.
 */

/** Class counts as the page shows them in a ClassCounts table: [label, count] per row. */
async function shownCounts(page: Page, testid: string): Promise<[number, number][]> {
  const rows = page.locator(`[data-testid="${testid}-row"]`);
  return Promise.all(
    (await rows.all()).map(async (row) => [Number(await row.getAttribute('data-label')), Number(await row.locator(`td.num`).innerText())] as [number, number]),
  );
}

test('selection builder: the preview and the saved selection show the API class counts; exports hold the selection; a READER cannot save', { timeout: 120_000 }, async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer, { auth: true });
  t.diagnostic(`seeded in ${seed.seedMs} ms`);
  const browser = await openBrowser(defer, { name: 'selections' });
  const { page } = browser;
  const keys = seed.keys!;
  // The ADMIN key where the Explorer keeps it, before its scripts run, unless the page has stored another since.
  await browser.context.addInitScript({
    content: `if (location.protocol === 'http:' && !localStorage.getItem('tangent.apiKey')) localStorage.setItem('tangent.apiKey', ${JSON.stringify(keys.admin)});`,
  });

  await page.goto(`${seed.origin}/#/selections?run=${seed.runId}`);
  const preview = page.getByTestId('preview');
  await preview.and(page.locator('[data-ready="true"]')).waitFor({ timeout: 30_000 });
  // The first strategy: top 10 by kNorm at the run's last analysis checkpoint.
  assert.equal(await page.getByTestId(`checkpoint-${seed.checkpointId}`).isChecked(), true);

  // Balanced top 12 of the train split, kNorm averaged over the three analysis checkpoints weighted 1 : 2 : 3.
  for (const id of seed.analysisCheckpointIds) await page.getByTestId(`checkpoint-${id}`).check();
  await page.getByTestId('weighting').selectOption('CUSTOM');
  await page.getByTestId('weights').fill('1, 2, 3');
  await page.getByTestId('method').selectOption('BALANCED_TOP_K');
  await page.getByTestId('k').fill('12');
  await page.getByTestId('split-train').check();
  const strategy = {
    checkpointIds: seed.analysisCheckpointIds,
    term: 'K_NORM',
    direction: 'DESC',
    method: 'BALANCED_TOP_K',
    subset: 'all',
    k: 12,
    weighting: 'CUSTOM',
    weights: [1, 2, 3],
    filter: { splits: ['train'] },
  };
  const { previewSelection: expected } = await seed.gql(
    `query($s: SelectionStrategyInput!) { previewSelection(strategy: $s) { count poolSize classCounts { label count } } }`,
    { s: strategy },
  );
  assert.equal(expected.count, 12);
  assert.equal(expected.poolSize, seed.samples.filter((s) => s.split === 'train').length);
  // The preview follows the form: once it shows the pool of the train split, it is this strategy's.
  await page.getByTestId('preview-pool').and(page.getByText(String(expected.poolSize), { exact: true })).waitFor();
  await preview.and(page.locator('[data-ready="true"]')).waitFor();
  assert.equal(await page.getByTestId('preview-count').innerText(), String(expected.count));
  assert.deepEqual(
    await shownCounts(page, 'preview-class-counts'),
    expected.classCounts.map((c: { label: number; count: number }) => [c.label, c.count]),
  );
  await browser.screenshot(page, 'selections-preview', { fullPage: true });

  // Save it; the list shows it, with the counts the API stored.
  await page.getByTestId('save-name').fill('balanced-12-less');
  await page.getByTestId('save-description').fill('made by the browser test');
  await page.getByTestId('save').click();
  const saved = page.getByTestId('saved');
  await saved.waitFor();
  const selectionId = (await saved.getAttribute('data-id'))!;
  const { selection } = await seed.gql(
    `query($id: ID!) { selection(id: $id) { name sampleCount weights weighting checkpointIds classCounts { label count } csv: exportUrl(format: CSV) jsonl: exportUrl(format: JSONL) } }`,
    { id: selectionId },
  );
  assert.equal(selection.name, 'balanced-12-less');
  assert.equal(selection.sampleCount, 12);
  assert.deepEqual(selection.checkpointIds, seed.analysisCheckpointIds);
  assert.equal(selection.weighting, 'CUSTOM');
  assert.deepEqual(
    selection.weights.map((w: number) => Math.round(w * 6 * 1e6) / 1e6),
    [1, 2, 3],
  );
  assert.deepEqual(selection.classCounts, expected.classCounts, 'the saved selection took what the preview said');
  const row = page.locator(`[data-testid="selection-row"][data-id="${selectionId}"]`);
  await row.waitFor();
  assert.equal(await row.getByTestId('selection-size').innerText(), '12');
  assert.equal(await page.getByTestId('preview-count').innerText(), '12', 'the form keeps its strategy after a save');
  await row.getByTestId('selection-open').click();
  const detail = page.locator(`[data-testid="selection-detail"][data-id="${selectionId}"]`);
  await detail.waitFor();
  assert.deepEqual(
    await shownCounts(page, 'saved-class-counts'),
    selection.classCounts.map((c: { label: number; count: number }) => [c.label, c.count]),
  );
  // Provenance: one line per checkpoint (all of it computed by this server).
  assert.equal(await detail.getByTestId('provenance-table').locator('tbody tr').count(), 3);
  await browser.screenshot(page, 'selections-saved', { fullPage: true });

  // The CSV, downloaded through the link (the page fetches it with the key): a header and a line per sample.
  const csvLink = row.getByTestId('export-csv');
  assert.equal(await csvLink.getAttribute('href'), selection.csv);
  const [download] = await Promise.all([page.waitForEvent('download'), csvLink.click()]);
  const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
  assert.equal(csv.length - 1, selection.sampleCount, 'CSV rows');
  // The JSONL, fetched from the address the link shows, with the key as a client would: a line per sample.
  const jsonlHref = (await row.getByTestId('export-jsonl').getAttribute('href'))!;
  const response = await fetch(new URL(jsonlHref, seed.origin), { headers: { authorization: `Bearer ${keys.admin}` } });
  assert.equal(response.status, 200);
  const jsonl = (await response.text()).trim().split('\n');
  assert.equal(jsonl.length, selection.sampleCount, 'JSONL rows');
  assert.deepEqual(
    jsonl.map((line) => JSON.parse(line).rank),
    Array.from({ length: 12 }, (_, i) => i + 1),
  );

  // A READER: the list and the exports, no save.
  await page.evaluate(`localStorage.setItem('tangent.apiKey', ${JSON.stringify(keys.reader)})`);
  await page.reload();
  await page.getByTestId('viewer-role').and(page.getByText('reader')).waitFor();
  await page.locator(`[data-testid="selection-row"][data-id="${selectionId}"]`).waitFor();
  await page.getByTestId('read-only').waitFor();
  assert.equal(await page.getByTestId('save-form').count(), 0, 'a READER sees no save form');
  assert.equal(await page.getByTestId('export-csv').count(), 2);
  await preview.and(page.locator('[data-ready="true"]')).waitFor();

  assert.deepEqual(browser.offHost, [], 'nothing asked for beyond this server');
  assert.deepEqual(browser.problems, [], 'no console or page errors');
});
