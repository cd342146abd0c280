import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer } from './seed.js';

/**
 * The run page in Chromium against a seeded server: the summary block's numbers are the API's
 * dynamicsSummary, the loss and accuracy charts hold Run.termStats' values at the analysis checkpoints
 * (training split, and the held-out split whose terms the page had computed, shown pending until then),
 * the probability paths chart draws one line per sample Run.probabilityPaths returns (one per sample and
 * class with "all classes"), hovering a line names its sample and clicking opens it at that checkpoint;
 * a run open while it runs follows runUpdated.
 */

/** A LineChart's values table: per series (column), the values by row; null where the page shows none. */
async function chartValues(page: Page, testid: string): Promise<(number | null)[][]> {
  return page.getByTestId(`${testid}-table`).evaluate((table) => {
    const rows = [...table.querySelectorAll('tbody tr')];
    const columns = rows[0] ? rows[0].querySelectorAll('td').length - 1 : 0;
    return Array.from({ length: columns }, (_, c) =>
      rows.map((row) => {
        const v = row.querySelectorAll('td')[c + 1]!.getAttribute('data-value');
        return v === '' || v === null ? null : Number(v);
      }),
    );
  });
}

test('run: the summary block, the curves and the probability paths are what the API returns', { timeout: 120_000 }, async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer);
  const browser = await openBrowser(defer, { name: 'run' });
  const { page } = browser;
  // What the page sends over graphql-ws, to know when it has subscribed.
  const framesSent: string[] = [];
  page.on('websocket', (ws) => ws.on('framesent', (frame) => framesSent.push(String(frame.payload))));
  await page.goto(`${seed.origin}/#/runs/${seed.runId}`);

  // The summary block: every number as the API gives it.
  const { run } = await seed.gql(
    `query($id: ID!) { run(id: $id) {
      checkpointCount
      dynamicsSummary { hPsdRatio samplesAnalysed analysisPoints probabilityPathsTracked pathLength finalTrainingAccuracy finalTrainingLoss }
      probabilityPaths { sampleIds checkpointIds classes }
    } }`,
    { id: seed.runId },
  );
  const summary = run.dynamicsSummary;
  await page.getByTestId('dynamics-summary').waitFor({ timeout: 30_000 });
  const shown = async (testid: string) => Number(await page.getByTestId(testid).getAttribute('data-value'));
  assert.equal(await shown('summary-h-psd-ratio'), summary.hPsdRatio);
  assert.equal(await shown('summary-samples-analysed'), summary.samplesAnalysed);
  assert.equal(await shown('summary-analysis-points'), summary.analysisPoints);
  assert.equal(await shown('summary-paths-tracked'), summary.probabilityPathsTracked);
  assert.equal(await shown('summary-path-length'), summary.pathLength);
  assert.equal(await shown('summary-final-accuracy'), summary.finalTrainingAccuracy);
  assert.equal(await shown('summary-final-loss'), summary.finalTrainingLoss);
  assert.equal(summary.samplesAnalysed, seed.samples.filter((s) => s.split === 'train').length);
  assert.equal(await page.getByTestId('summary-final-accuracy').innerText(), `${(summary.finalTrainingAccuracy * 100).toFixed(1)}%`);

  // The probability paths: one line per sample the API returns, over every checkpoint.
  const paths = page.locator('[data-testid="paths-chart"][data-ready="true"]');
  await paths.waitFor({ timeout: 30_000 });
  const S = run.probabilityPaths.sampleIds.length;
  assert.equal(S, seed.trackedSampleIds.length);
  assert.equal(await paths.getAttribute('data-paths'), String(S));
  assert.equal(await paths.getAttribute('data-lines'), String(S));
  assert.equal(await paths.getAttribute('data-points'), String(run.probabilityPaths.checkpointIds.length));
  assert.equal(run.probabilityPaths.checkpointIds.length, seed.checkpoints.length);
  await page.getByTestId('paths-all-classes').check();
  await page.locator('[data-testid="paths-chart"][data-mode="all"][data-ready="true"]').waitFor();
  assert.equal(await paths.getAttribute('data-lines'), String(S * run.probabilityPaths.classes));

  // Hover: sweep down the middle of the plot until a line is near enough to be named; click opens it.
  const over = page.locator('[data-testid="paths-chart"] .u-over');
  const box = (await over.boundingBox())!;
  const tooltip = page.getByTestId('paths-chart-tooltip');
  let named = '';
  for (let y = 0.02; y < 1 && !named; y += 0.01) {
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * y);
    if (await tooltip.isVisible()) named = await tooltip.innerText();
  }
  const indexOf = new Map(seed.samples.map((s) => [s.id, s.index]));
  const trackedIndices = run.probabilityPaths.sampleIds.map((id: string) => indexOf.get(id));
  const hovered = Number(/sample #(\d+)/.exec(named)?.[1]);
  assert.ok(trackedIndices.includes(hovered), `the tooltip names a tracked sample: "${named}" (tracked: ${trackedIndices.join(', ')})`);
  await browser.screenshot(page, 'run-paths-hover');

  // The curves: train means at the analysis checkpoints, and the held-out (test) split's once the page has had them computed.
  await page.goto(`${seed.origin}/#/runs/${seed.runId}`);
  const loss = page.locator('[data-testid="loss-chart"][data-ready="true"]');
  await loss.waitFor({ timeout: 30_000 });
  await page.locator(`[data-testid="loss-chart"][data-points="${2 * seed.analysisCheckpointIds.length}"]`).waitFor({ timeout: 60_000 });
  await page.locator(`[data-testid="accuracy-chart"][data-points="${2 * seed.analysisCheckpointIds.length}"]`).waitFor({ timeout: 30_000 });
  const curves = await seed.gql(
    `query($id: ID!, $ids: [ID!]) { run(id: $id) {
      trainLoss: termStats(term: LOSS, filter: { splits: ["train"] }, checkpointIds: $ids) { count mean }
      trainRight: termStats(term: LOSS, filter: { splits: ["train"], correct: true }, checkpointIds: $ids) { count }
      testLoss: termStats(term: LOSS, filter: { splits: ["test"] }, checkpointIds: $ids) { count mean }
      testRight: termStats(term: LOSS, filter: { splits: ["test"], correct: true }, checkpointIds: $ids) { count }
    } }`,
    { id: seed.runId, ids: seed.analysisCheckpointIds },
  );
  const c = curves.run;
  assert.deepEqual(await chartValues(page, 'loss-chart'), [c.trainLoss.map((s: any) => s.mean), c.testLoss.map((s: any) => s.mean)]);
  assert.deepEqual(await chartValues(page, 'accuracy-chart'), [
    c.trainLoss.map((s: any, i: number) => c.trainRight[i].count / s.count),
    c.testLoss.map((s: any, i: number) => c.testRight[i].count / s.count),
  ]);
  assert.deepEqual(
    c.testLoss.map((s: any) => s.count),
    seed.analysisCheckpointIds.map(() => seed.samples.filter((s) => s.split === 'test').length),
  );
  await page.locator('[data-testid="htrace-chart"][data-ready="true"]').waitFor();
  await page.locator('[data-testid="anorm-chart"][data-ready="true"]').waitFor();
  assert.equal(await page.getByTestId('curves-pending-heldout').count(), 0, 'nothing pending once the page has them');

  // Every checkpoint is listed, linking to its page.
  assert.equal(await page.locator('[data-testid="checkpoint-row"]').count(), run.checkpointCount);
  for (const checkpoint of seed.checkpoints) {
    assert.equal(await page.locator(`[data-testid="checkpoint-row"][data-id="${checkpoint.id}"] a`).getAttribute('href'), `#/checkpoints/${checkpoint.id}`);
  }
  await browser.screenshot(page, 'run', { fullPage: true });

  // A click on a path opens that sample at that checkpoint.
  await page.locator('[data-testid="paths-chart"][data-ready="true"]').scrollIntoViewIfNeeded();
  const box2 = (await page.locator('[data-testid="paths-chart"] .u-over').boundingBox())!;
  let clickedAt = -1;
  for (let y = 0.02; y < 1; y += 0.01) {
    await page.mouse.move(box2.x + box2.width * 0.5, box2.y + box2.height * y);
    if (await tooltip.isVisible()) {
      clickedAt = y;
      break;
    }
  }
  assert.ok(clickedAt > 0, 'a line near the middle of the chart');
  const tip = await tooltip.innerText();
  await page.mouse.click(box2.x + box2.width * 0.5, box2.y + box2.height * clickedAt);
  await page.waitForURL(/#\/samples\//);
  const url = new URL(page.url());
  const [, sampleId, checkpointId] = /^#\/samples\/([^?]+)\?checkpoint=(.+)$/.exec(url.hash) ?? [];
  assert.ok(run.probabilityPaths.sampleIds.includes(sampleId), `a tracked sample: ${url.hash}`);
  assert.ok(run.probabilityPaths.checkpointIds.includes(checkpointId), `a checkpoint of the run: ${url.hash}`);
  assert.match(tip, new RegExp(`sample #${indexOf.get(sampleId!)} `), 'the sample opened is the one the tooltip named');

  // A run a client logs, open while it runs: the page follows runUpdated (its name and status change
  // without a reload); with no training it has no tracked samples and says so.
  const { createRun } = await seed.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: 'client-run', modelId: seed.modelId, datasetId: seed.dataset.id, status: 'RUNNING' },
  });
  await page.goto(`${seed.origin}/#/runs/${createRun.id}`);
  const heading = page.getByRole('heading', { level: 1 });
  await heading.and(page.getByText('client-run running')).waitFor();
  await page.getByTestId('paths-none').waitFor();
  assert.equal(await page.getByTestId('summary-analysis-points').getAttribute('data-value'), '0');
  // Once the page has subscribed to this run's updates, the run changes.
  const subscribed = () => framesSent.some((f) => f.includes('"subscribe"') && f.includes('runUpdated') && f.includes(`"id":"${createRun.id}"`));
  for (let i = 0; i < 200 && !subscribed(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(subscribed(), `the page subscribed to runUpdated: ${framesSent.join(' | ')}`);
  await seed.gql(`mutation($id: ID!) { updateRun(id: $id, input: { name: "client-run-renamed", status: COMPLETED }) { id } }`, { id: createRun.id });
  await heading.and(page.getByText('client-run-renamed completed')).waitFor({ timeout: 20_000 });

  assert.deepEqual(browser.offHost, [], 'nothing asked for beyond this server');
  assert.deepEqual(browser.problems, [], 'no console or page errors');
});
