/**
 * The Explorer's checkpoint page (#/checkpoints/:id) in a real browser against a seeded server: what
 * it draws is what the API answers. The ranked table's rows and values are the API's ranking (after
 * paging, reordering and filtering too), the histogram's bin counts are termStats' per class, the
 * scatter draws one point per sample, the embedding map one per embedded series, the parameter-subset
 * switch re-asks over the chosen subset, and where kNorm was never computed (a tracking checkpoint, seen
 * with a READER key, which starts no computation) the page says pending, never a count or a zero.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer, type Seeded } from './seed.js';

const RANKED = `query($id: ID!, $first: Int, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder, $subset: String) {
  checkpoint(id: $id) {
    rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset) {
      totalCount pageInfo { endCursor } nodes { sampleId className score loss kNorm kTrace }
    }
  }
}`;

interface DrawnRow {
  sampleId: string;
  className: string;
  score: number;
  loss: number | null;
  kNorm: number | null;
}

/** The ranked table's rows once it has drawn the page it asked for, with the exact values of its cells. */
async function drawnRows(page: Page): Promise<DrawnRow[]> {
  await page.locator('[data-testid=ranked-table][data-ready=true]').waitFor();
  // Plain expressions only inside the page: tsx names inner functions with a helper the page lacks.
  const raw = await page.$$eval('[data-testid=ranked-row]', (rows) =>
    rows.map((row) => [
      row.getAttribute('data-sample-id')!,
      row.children[2]!.textContent!,
      row.getAttribute('data-score')!,
      row.querySelector('[data-testid=ranked-loss]')!.getAttribute('data-value')!,
      row.querySelector('[data-testid=ranked-kNorm]')!.getAttribute('data-value')!,
    ]),
  );
  const value = (v: string) => (v === '' ? null : Number(v));
  return raw.map(([sampleId, className, score, loss, kNorm]) => ({ sampleId: sampleId!, className: className!, score: Number(score), loss: value(loss!), kNorm: value(kNorm!) }));
}

async function apiRows(seed: Seeded, checkpointId: string, args: Record<string, unknown>): Promise<{ rows: DrawnRow[]; totalCount: number; endCursor: string }> {
  const { checkpoint } = await seed.gql(RANKED, { id: checkpointId, first: 20, ...args });
  const c = checkpoint.rankedSamples;
  return {
    rows: c.nodes.map((n: any) => ({ sampleId: String(n.sampleId), className: n.className, score: n.score, loss: n.loss, kNorm: n.kNorm })),
    totalCount: c.totalCount,
    endCursor: c.pageInfo.endCursor,
  };
}

/**
 * Waits until the table shows the expected rows (it passes through other pages while a change of
 * order, filter or page is on its way), then compares every value; on a timeout the comparison says
 * what was drawn instead.
 */
async function expectRows(page: Page, expected: DrawnRow[], timeout = 20_000): Promise<void> {
  const ids = expected.map((r) => r.sampleId).join(',');
  await page
    .waitForFunction(
      (want) =>
        (globalThis as any).document.querySelector('[data-testid=ranked-table]')?.getAttribute('data-ready') === 'true' &&
        [...(globalThis as any).document.querySelectorAll('[data-testid=ranked-row]')].map((r: any) => r.getAttribute('data-sample-id')).join(',') === want,
      ids,
      { timeout },
    )
    .catch(() => undefined);
  assert.deepEqual(await drawnRows(page), expected);
}

test('the checkpoint page draws the API: ranked table, histograms, scatter, embedding, subset switch, pending terms', async (t) => {
  const defer = cleanupStack(t);
  // Keys required: the page runs with an ADMIN key (it may compute terms), then with a READER's.
  const seed = await startSeededServer(defer, { auth: true });
  t.diagnostic(`seeded in ${Math.round(seed.seedMs)} ms`);
  // Pending terms answer HTTP 409 (TERMS_PENDING), which Chromium logs as a failed resource: expected here.
  const browser = await openBrowser(defer, { name: 'checkpoint', ignoreConsole: [/status of 409/] });
  const { page } = browser;
  await page.addInitScript((key) => (globalThis as any).localStorage.getItem('tangent.apiKey') || (globalThis as any).localStorage.setItem('tangent.apiKey', key), seed.keys!.admin);
  const id = seed.checkpointId;
  const n = seed.dataset.sampleCount;

  await page.goto(`${seed.origin}/#/checkpoints/${id}`);
  await page.getByTestId('checkpoint-page').waitFor();

  // The ranked table: the API's first page by kNorm (the default order), row for row, value for value.
  const first = await apiRows(seed, id, {});
  await expectRows(page, first.rows);
  assert.equal(await page.getByTestId('ranked-total').textContent(), String(first.totalCount));
  assert.equal(first.totalCount, n);

  // Next page: the API's page after the first page's endCursor.
  await page.getByTestId('ranked-next').click();
  await expectRows(page, (await apiRows(seed, id, { after: first.endCursor })).rows);

  // Another order: loss, smallest first (back on page 1).
  await page.getByTestId('ranked-term').selectOption({ value: 'LOSS' });
  await page.getByTestId('ranked-direction').selectOption({ value: 'ASC' });
  await expectRows(page, (await apiRows(seed, id, { orderBy: { term: 'LOSS', direction: 'ASC' } })).rows);

  // A filter: one class, misclassified or not, the test split.
  await page.getByTestId('ranked-class').selectOption({ value: '1' });
  await page.getByTestId('ranked-split').selectOption({ value: 'test' });
  const filtered = await apiRows(seed, id, { orderBy: { term: 'LOSS', direction: 'ASC' }, filter: { labels: [1], splits: ['test'] } });
  await expectRows(page, filtered.rows);
  assert.ok(filtered.rows.length > 0 && filtered.rows.every((r) => r.className === seed.dataset.classNames[1]));
  await page.waitForFunction((total) => (globalThis as any).document.querySelector('[data-testid=ranked-total]')?.textContent === total, String(filtered.totalCount));

  // The histograms: each class's bin counts are termStats.byClass' over the same 20 shared bins.
  const { checkpoint: stats } = await seed.gql(
    `query($id: ID!) { checkpoint(id: $id) { termStats(term: K_NORM) { count byClass { label histogram(bins: 20) { bins { count } } } } } }`,
    { id },
  );
  await page.locator('[data-testid=knorm-histogram][data-ready=true]').waitFor();
  const binCounts = await page.$$eval('[data-testid=knorm-histogram-table] tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => Number(td.textContent))));
  const expected = stats.termStats.byClass[0].histogram.bins.map((_: unknown, j: number) => stats.termStats.byClass.map((c: any) => c.histogram.bins[j].count));
  assert.deepEqual(binCounts, expected);
  assert.equal(await page.getByTestId('knorm-histogram').getAttribute('data-total'), String(n));
  assert.equal(await page.getByTestId('knorm-count').textContent(), String(stats.termStats.count));

  // The scatter: one point drawn per sample; the embedding: one per series (all of them, under the cap).
  const scatter = page.locator('[data-testid=loss-knorm-scatter] canvas[data-ready=true]');
  await scatter.waitFor();
  assert.equal(await scatter.getAttribute('data-points'), String(n));
  assert.equal(await scatter.getAttribute('data-visible'), String(n));
  const map = page.locator('[data-testid=embedding-map] canvas[data-ready=true]');
  await map.waitFor({ timeout: 60_000 });
  assert.equal(await map.getAttribute('data-points'), String(n));
  // Coloured by a term: the same points, now on a continuous scale.
  await page.getByTestId('embedding-colour').selectOption({ value: 'kNorm' });
  await page.getByTestId('embedding-map').getByText('‖K‖_F:').waitFor();
  await browser.screenshot(page, 'checkpoint', { fullPage: true });

  // The subset switch lists the model's subsets, and the table re-ranks over the chosen one.
  const { model } = await seed.gql(`query($id: ID!) { model(id: $id) { parameterSubsets { name } } }`, { id: seed.modelId });
  const options = await page.getByTestId('subset-switch').locator('option').evaluateAll((os) => os.map((o) => o.getAttribute('value')));
  assert.deepEqual(options.sort(), [...new Set(['all', ...model.parameterSubsets.map((s: any) => s.name)])].sort());
  await page.getByTestId('ranked-class').selectOption({ value: '' });
  await page.getByTestId('ranked-split').selectOption({ value: '' });
  await page.getByTestId('ranked-term').selectOption({ value: 'K_NORM' });
  await page.getByTestId('ranked-direction').selectOption({ value: 'DESC' });
  await expectRows(page, first.rows);
  // Over the head, kNorm is computed when first asked for (inline: 200 samples), by the page's queries.
  await page.getByTestId('subset-switch').selectOption({ value: 'head' });
  await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-testid=ranked-table]')?.getAttribute('data-ready') !== 'true');
  await page.locator('[data-testid=ranked-table][data-ready=true]').waitFor({ timeout: 60_000 });
  const head = await apiRows(seed, id, { subset: 'head' });
  await expectRows(page, head.rows);
  assert.notDeepEqual(head.rows.map((r) => r.kNorm), first.rows.map((r) => r.kNorm));

  // A tracking checkpoint where kNorm was never computed, seen by a READER (who starts no computation):
  // pending, and no count, bin or zero in its place.
  const tracking = seed.checkpoints.find((c) => !c.analysis)!;
  await page.evaluate((key) => (globalThis as any).localStorage.setItem('tangent.apiKey', key), seed.keys!.reader);
  // A new page (the same origin's storage): its app starts with the READER's key. Navigating this one
  // would only change its hash, and its app would ask with the ADMIN key it holds (and compute).
  const reader = await browser.newPage();
  await reader.goto(`${seed.origin}/#/checkpoints/${tracking.id}`);
  for (const section of ['histogram-problem', 'ranked-problem']) {
    const notice = reader.getByTestId(section);
    await notice.waitFor();
    assert.match((await notice.textContent())!, /^Pending: .*lack kNorm/);
  }
  assert.equal(await reader.locator('[data-testid^=bin-], [data-testid=ranked-row], [data-testid=knorm-count]').count(), 0);
  await browser.screenshot(reader, 'checkpoint-pending');
  // The API says the same to the same key.
  const asReader = await seed.request(`query($id: ID!) { checkpoint(id: $id) { termStats(term: K_NORM) { count } } }`, { id: tracking.id }, { authorization: `Bearer ${seed.keys!.reader}` });
  assert.equal(asReader.errors?.[0]?.extensions?.code, 'TERMS_PENDING');

  assert.deepEqual(browser.offHost, []);
  assert.deepEqual(browser.problems, []);
});
