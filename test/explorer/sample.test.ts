/**
 * The Explorer's sample page (#/samples/:id?checkpoint=) in a real browser against a seeded server:
 * the sample's terms at every checkpoint of its run are the API's (sampleTerms, value for value), its
 * series is drawn, and the first-order prediction against a sample picked from the checkpoint's
 * ranked table is the API's firstOrder (predicted and observed Δlog π per class).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer } from './seed.js';

const TERMS = ['loss', 'gNorm', 'aNorm', 'hTrace', 'hMinEig', 'kNorm', 'kTrace'] as const;

test('the sample page draws the API: terms across checkpoints, series, firstOrder against a picked sample', async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer);
  t.diagnostic(`seeded in ${Math.round(seed.seedMs)} ms`);
  const browser = await openBrowser(defer, { name: 'sample' });
  const { page } = browser;
  const sampleId = seed.trackedSampleIds[0]!;
  const checkpointId = seed.checkpointId;

  await page.goto(`${seed.origin}/#/samples/${sampleId}?checkpoint=${checkpointId}`);
  const { sample } = await seed.gql(`query($id: ID!) { sample(id: $id) { index label className series } }`, { id: sampleId });
  assert.equal(await page.getByTestId('sample-index').textContent(), String(sample.index));
  assert.equal(await page.getByTestId('sample-class').textContent(), sample.className);
  await page.locator('[data-testid=sample-series][data-ready=true]').waitFor();

  // One row per checkpoint of the run, in step order, each with the API's values once it has them
  // (the page's own request computed what was missing, so the API now reads the same stored values).
  const rows = page.getByTestId('sample-terms-row');
  await page.waitForFunction(
    (n) => {
      const all = [...(globalThis as any).document.querySelectorAll('[data-testid=sample-terms-row]')];
      return all.length === n && all.every((r: any) => r.getAttribute('data-ready') === 'true');
    },
    seed.checkpoints.length,
    { timeout: 60_000 },
  );
  assert.deepEqual(
    await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-checkpoint-id'))),
    seed.checkpoints.map((c) => c.id),
  );
  const drawn = await rows.evaluateAll((trs) =>
    trs.map((tr) => ({
      correct: tr.querySelector('[data-testid=term-correct]')!.textContent,
      values: Object.fromEntries([...tr.querySelectorAll('[data-testid^=term-]')].filter((td: any) => td.hasAttribute('data-value')).map((td: any) => [td.getAttribute('data-testid').slice(5), td.getAttribute('data-value')])),
    })),
  );
  for (const [i, checkpoint] of seed.checkpoints.entries()) {
    const { checkpoint: api } = await seed.gql(
      `query($c: ID!, $s: ID!) { checkpoint(id: $c) { sampleTerms(sampleIds: [$s], terms: [LOSS, CORRECT, PROBS, A_NORM, H_TRACE, H_MIN_EIG, G_NORM, K_NORM, K_TRACE]) { loss correct probs aNorm hTrace hMinEig gNorm kNorm kTrace } } }`,
      { c: checkpoint.id, s: sampleId },
    );
    const m = api.sampleTerms[0];
    const row = drawn[i]!;
    for (const term of TERMS) assert.equal(row.values[term], String(m[term]), `${term} at step ${checkpoint.step}`);
    assert.equal(row.values.piTrue, String(m.probs[sample.label]), `π(y) at step ${checkpoint.step}`);
    assert.equal(row.correct, m.correct ? 'yes' : 'no');
  }
  await page.locator('[data-testid=sample-terms-chart][data-ready=true]').waitFor();

  // firstOrder: pick the top row of the checkpoint's ranked table (kNorm, largest first).
  const { checkpoint: ranked } = await seed.gql(`query($id: ID!) { checkpoint(id: $id) { rankedSamples(first: 1) { nodes { sampleId } } } }`, { id: checkpointId });
  const updatedId = String(ranked.rankedSamples.nodes[0].sampleId);
  await page.locator('[data-testid=pick-table][data-ready=true]').waitFor();
  const firstRow = page.getByTestId('pick-row').first();
  assert.equal(await firstRow.getAttribute('data-sample-id'), updatedId);
  await firstRow.getByTestId('pick-pick').click();
  await page.getByTestId('firstorder-table').waitFor({ timeout: 60_000 });
  const { checkpoint: fo } = await seed.gql(
    `query($c: ID!, $o: ID!, $u: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $u) { learningRate logProbs predictedDeltaLogProbs observedDeltaLogProbs nextCheckpoint { id } } } }`,
    { c: checkpointId, o: sampleId, u: updatedId },
  );
  const cells = (testId: string) => page.getByTestId(testId).evaluateAll((tds) => tds.map((td) => td.getAttribute('data-value') ?? undefined));
  assert.equal(await page.getByTestId('firstorder-updated').getAttribute('data-sample-id'), updatedId);
  assert.deepEqual(await cells('fo-logprob'), fo.firstOrder.logProbs.map(String));
  assert.deepEqual(await cells('fo-predicted'), fo.firstOrder.predictedDeltaLogProbs.map(String));
  // The last analysis checkpoint is the run's last: nothing observed after it, shown as none (not 0).
  if (fo.firstOrder.nextCheckpoint) assert.deepEqual(await cells('fo-observed'), fo.firstOrder.observedDeltaLogProbs.map(String));
  else assert.deepEqual(await page.getByTestId('fo-observed').allTextContents(), seed.dataset.classNames.map(() => 'none'));
  await page.locator('[data-testid=firstorder-chart][data-ready=true]').waitFor();

  // An earlier checkpoint has a next one: predicted beside observed.
  const earlier = seed.analysisCheckpointIds[0]!;
  await page.getByTestId('firstorder-checkpoint').selectOption({ value: earlier });
  await page.locator('[data-testid=pick-table][data-ready=true]').waitFor();
  const { checkpoint: rankedEarly } = await seed.gql(`query($id: ID!) { checkpoint(id: $id) { rankedSamples(first: 1) { nodes { sampleId } } } }`, { id: earlier });
  const earlyId = String(rankedEarly.rankedSamples.nodes[0].sampleId);
  await page.waitForFunction((id) => (globalThis as any).document.querySelector('[data-testid=pick-row]')?.getAttribute('data-sample-id') === id, earlyId);
  await page.getByTestId('pick-row').first().getByTestId('pick-pick').click();
  await page.waitForFunction((id) => (globalThis as any).document.querySelector('[data-testid=firstorder-updated]')?.getAttribute('data-sample-id') === id, earlyId);
  const { checkpoint: foEarly } = await seed.gql(
    `query($c: ID!, $o: ID!, $u: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $u) { predictedDeltaLogProbs observedDeltaLogProbs nextCheckpoint { id } } } }`,
    { c: earlier, o: sampleId, u: earlyId },
  );
  assert.ok(foEarly.firstOrder.nextCheckpoint, 'the first analysis checkpoint has a next one');
  await page.waitForFunction(
    (want) => [...(globalThis as any).document.querySelectorAll('[data-testid=fo-observed]')].map((td: any) => td.getAttribute('data-value')).join(',') === want,
    foEarly.firstOrder.observedDeltaLogProbs.map(String).join(','),
    { timeout: 60_000 },
  );
  // The table may still show the pick made at the later checkpoint for a moment: wait for the new answer.
  await page.waitForFunction(
    (want) => [...(globalThis as any).document.querySelectorAll('[data-testid=fo-predicted]')].map((td: any) => td.getAttribute('data-value')).join(',') === want,
    foEarly.firstOrder.predictedDeltaLogProbs.map(String).join(','),
    { timeout: 60_000 },
  ).catch(() => undefined);
  assert.deepEqual(await cells('fo-predicted'), foEarly.firstOrder.predictedDeltaLogProbs.map(String));
  await browser.screenshot(page, 'sample', { fullPage: true });

  assert.deepEqual(browser.offHost, []);
  assert.deepEqual(browser.problems, []);
});
