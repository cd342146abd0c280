import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { SMALL_CNN } from '../jobs/helpers.js';
import { startSeededServer } from './seed.js';

/**
 * The Explorer's home page in Chromium against a seeded server: the data sets, models and runs tables
 * show the rows the API lists (a name search and Relay paging included, over 12 models), a data set
 * narrows the runs to its own, a run's link opens its page, and the job queue shows the API's jobs,
 * with a job started meanwhile appearing and followed to COMPLETED over its subscription.
 */

/** The ids of a table's rows, in order. */
const rowIds = (page: Page, testid: string) => page.locator(`[data-testid="${testid}"]`).evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')!));

test('home: data sets, models and runs as the API lists them, with search and paging; the job queue live', { timeout: 120_000 }, async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer);
  // Eleven more models, for a second page of models (the page shows 10).
  for (let i = 1; i <= 11; i++) {
    await seed.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
      input: { name: `paging-model-${String(i).padStart(2, '0')}`, format: 'BUILTIN', architecture: 'cnn1d', config: SMALL_CNN, inputLength: seed.dataset.length, numClasses: 2 },
    });
  }
  const browser = await openBrowser(defer, { name: 'home' });
  const { page } = browser;
  await page.goto(`${seed.origin}/`);

  const api = await seed.gql(`{
    datasets(first: 10) { totalCount nodes { id name } }
    models(first: 10) { totalCount pageInfo { hasNextPage endCursor } nodes { id name } }
    runs(first: 10) { totalCount nodes { id name status } }
    jobs(first: 20) { totalCount nodes { id status } }
  }`);

  await page.locator('[data-testid="run-row"]').first().waitFor();
  assert.deepEqual(await rowIds(page, 'run-row'), api.runs.nodes.map((r: any) => r.id));
  assert.equal(await page.locator(`[data-testid="run-row"][data-id="${seed.runId}"] a`).innerText(), 'gunpoint-cnn');
  assert.equal(await page.getByTestId('runs-total').innerText(), String(api.runs.totalCount));
  assert.deepEqual(await rowIds(page, 'dataset-row'), api.datasets.nodes.map((d: any) => d.id));
  assert.equal(await page.getByTestId('datasets-total').innerText(), String(api.datasets.totalCount));

  // Models: 12 over two pages, the second after the first page's endCursor.
  await page.locator('[data-testid="model-row"]').nth(9).waitFor();
  assert.equal(api.models.totalCount, 12);
  assert.deepEqual(await rowIds(page, 'model-row'), api.models.nodes.map((m: any) => m.id));
  assert.equal(await page.getByTestId('models-total').innerText(), '12');
  await page.getByRole('navigation', { name: 'models pages' }).getByRole('button', { name: 'Next' }).click();
  const second = await seed.gql(`query($after: String) { models(first: 10, after: $after) { nodes { id } } }`, { after: api.models.pageInfo.endCursor });
  await page.getByTestId('models-range').and(page.getByText('11–12 of 12')).waitFor();
  assert.deepEqual(await rowIds(page, 'model-row'), second.models.nodes.map((m: any) => m.id));
  await page.getByRole('navigation', { name: 'models pages' }).getByRole('button', { name: 'Previous' }).click();
  await page.getByTestId('models-range').and(page.getByText('1–10 of 12')).waitFor();

  // A name search is the API's nameContains.
  await page.getByTestId('models-search').fill('model-1');
  const searched = await seed.gql(`{ models(first: 10, filter: { nameContains: "model-1" }) { nodes { id name } } }`);
  assert.equal(searched.models.nodes.length, 2, 'paging-model-10 and -11');
  await page.getByTestId('models-range').and(page.getByText('1–2 of 2')).waitFor();
  assert.deepEqual(await rowIds(page, 'model-row'), searched.models.nodes.map((m: any) => m.id));
  await page.getByTestId('datasets-search').fill('no such data set');
  await page.getByTestId('datasets-range').and(page.getByText('0–0 of 0')).waitFor();
  await page.getByTestId('datasets-search').fill('gun');
  await page.locator('[data-testid="dataset-row"]').first().waitFor();

  // A data set narrows the runs to its own.
  await page.locator(`[data-testid="dataset-row"][data-id="${seed.dataset.id}"] a`).click();
  await page.getByTestId('runs-scope').waitFor();
  const ofDataset = await seed.gql(`query($id: ID!) { runs(first: 10, filter: { datasetId: $id }) { nodes { id } } }`, { id: seed.dataset.id });
  await page.locator('[data-testid="run-row"]').first().waitFor();
  assert.deepEqual(await rowIds(page, 'run-row'), ofDataset.runs.nodes.map((r: any) => r.id));

  // The job queue: the seed's jobs, then one started now, followed until it is done.
  await page.locator('[data-testid="job-row"]').first().waitFor();
  assert.deepEqual(
    await page.locator('[data-testid="job-row"]').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-job-id'), r.getAttribute('data-status')])),
    api.jobs.nodes.map((j: any) => [j.id, j.status]),
  );
  const tracking = seed.checkpoints.find((c) => !c.analysis)!;
  const { computeTerms: job } = await seed.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
    input: { checkpointId: tracking.id, terms: ['K_NORM'], splits: ['train'] },
  });
  const row = page.locator(`[data-testid="job-row"][data-job-id="${job.id}"]`);
  await row.waitFor({ timeout: 20_000 });
  await page.locator(`[data-testid="job-row"][data-job-id="${job.id}"][data-status="COMPLETED"]`).waitFor({ timeout: 60_000 });
  const { job: done } = await seed.gql(`query($id: ID!) { job(id: $id) { status progress { samplesDone samplesTotal } } }`, { id: job.id });
  assert.equal(done.status, 'COMPLETED');
  const bar = page.getByTestId(`job-progress-${job.id}`);
  assert.equal(await bar.getAttribute('data-samples-done'), String(done.progress.samplesDone));
  assert.equal(await bar.getAttribute('data-samples-total'), String(done.progress.samplesTotal));
  assert.equal(done.progress.samplesTotal, seed.samples.filter((s) => s.split === 'train').length);
  await browser.screenshot(page, 'home', { fullPage: true });

  // A run's link opens its page.
  await page.locator(`[data-testid="run-row"][data-id="${seed.runId}"] a`).click();
  await page.getByTestId('run-page').waitFor();
  assert.equal(new URL(page.url()).hash, `#/runs/${seed.runId}`);

  assert.deepEqual(browser.offHost, [], 'nothing asked for beyond this server');
  assert.deepEqual(browser.problems, [], 'no console or page errors');
});
