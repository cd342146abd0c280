import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openBrowser } from '../helpers/browser.js';
import { cleanupStack } from '../helpers/cleanup.js';
import { startSeededServer } from './seed.js';

/**
 * The jobs page in Chromium against a seeded server with API keys on: without a key the page asks for
 * one; with an ADMIN's, computeTerms queued from the form (kNorm and kTrace at a tracking checkpoint,
 * where no sample has them) is the job the API lists, its progress follows the jobProgress
 * subscription to COMPLETED, its terms are shown as pending (never as numbers) until then, and then as
 * the API's termStats. A READER's key shows the queue and no form; revoked, the page asks for a key again.
 */

test('jobs: computeTerms from the page, followed over jobProgress, pending until done; a READER sees no form', { timeout: 120_000 }, async (t) => {
  const defer = cleanupStack(t);
  const seed = await startSeededServer(defer, { auth: true });
  const keys = seed.keys!;
  // The first load, without a key, is refused: the browser logs that 401, which is the point.
  const browser = await openBrowser(defer, { name: 'jobs', ignoreConsole: [/status of 401/] });
  const { page } = browser;
  const tracking = seed.checkpoints.find((c) => !c.analysis)!;

  // No key: the page asks for one; the ADMIN's, typed into the bar, is kept and used.
  await page.goto(`${seed.origin}/#/jobs?checkpoint=${tracking.id}`);
  await page.getByText('This server requires an API key.').waitFor({ timeout: 30_000 });
  await page.getByRole('textbox', { name: 'API key' }).fill(keys.admin);
  await page.getByRole('button', { name: 'Use key' }).click();
  await page.getByTestId('viewer-role').and(page.getByText('admin')).waitFor();
  assert.equal(await page.evaluate(() => (globalThis as any).localStorage.getItem('tangent.apiKey')), keys.admin);

  // The form opens on the checkpoint of the URL, kNorm and kTrace ticked.
  const form = page.getByTestId('compute-form');
  await form.waitFor();
  await page.locator(`[data-testid="compute-checkpoint"] option[value="${tracking.id}"]`).waitFor({ state: 'attached' });
  assert.equal(await page.getByTestId('compute-checkpoint').inputValue(), tracking.id);
  assert.equal(await page.getByTestId('compute-term-K_NORM').isChecked(), true);
  assert.equal(await page.getByTestId('compute-term-K_TRACE').isChecked(), true);
  await page.getByTestId('compute-split-train').check();

  // Every state the current job's panel goes through, recorded as the page draws it.
  // (A string, run as it is in the page: tsx would wrap a function's inner closures in a helper the page lacks.)
  await page.evaluate(`(() => {
    const seen = [];
    window.__jobStates = seen;
    new MutationObserver(() => {
      const panel = document.querySelector('[data-testid="current-job"]');
      if (!panel) return;
      const terms = [...panel.querySelectorAll('[data-testid="job-term"]')].map((row) => row.getAttribute('data-term') + '=' + row.getAttribute('data-state'));
      const means = panel.querySelectorAll('[data-testid^="term-mean-"]').length;
      const state = panel.getAttribute('data-status') + ' ' + terms.join(',') + ' means:' + means;
      if (seen[seen.length - 1] !== state) seen.push(state);
    }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  })()`);
  await page.getByTestId('compute-submit').click();
  const panel = page.getByTestId('current-job');
  await panel.waitFor();
  const jobId = (await panel.getAttribute('data-job-id'))!;
  await page.locator('[data-testid="current-job"][data-status="COMPLETED"] [data-testid="term-mean-K_TRACE"]').waitFor({ timeout: 60_000 });
  await page.getByTestId('term-mean-K_NORM').waitFor();
  const states = (await page.evaluate('window.__jobStates')) as string[];

  // The job the API has: this checkpoint, these terms, finished, every train sample done.
  const train = seed.samples.filter((s) => s.split === 'train').length;
  const { job, checkpoint } = await seed.gql(
    `query($job: ID!, $checkpoint: ID!) {
      job(id: $job) { status terms subset checkpoint { id } progress { samplesDone samplesTotal } }
      checkpoint(id: $checkpoint) {
        kNorm: termStats(term: K_NORM, filter: { splits: ["train"] }) { count mean }
        kTrace: termStats(term: K_TRACE, filter: { splits: ["train"] }) { count mean }
      }
    }`,
    { job: jobId, checkpoint: tracking.id },
  );
  assert.equal(job.status, 'COMPLETED');
  assert.equal(job.checkpoint.id, tracking.id);
  assert.deepEqual([...job.terms].sort(), ['K_NORM', 'K_TRACE']);
  assert.deepEqual(job.progress, { samplesDone: train, samplesTotal: train });
  const bar = page.getByTestId(`job-progress-${jobId}`).first();
  assert.equal(await bar.getAttribute('data-samples-done'), String(train));
  assert.equal(await bar.getAttribute('data-samples-total'), String(train));

  // Pending, then the API's numbers: never a number before the job had finished.
  assert.match(states[0]!, /^(QUEUED|RUNNING) K_NORM=pending,K_TRACE=pending means:0$/, `first drawn: ${states[0]}`);
  for (const state of states) {
    if (!state.startsWith('COMPLETED')) assert.match(state, /K_NORM=pending,K_TRACE=pending means:0$/, `while the job works: ${states.join(' | ')}`);
  }
  const number = (s: string) => Number(s);
  assert.equal(number(await page.getByTestId('term-count-K_NORM').innerText()), checkpoint.kNorm.count);
  assert.equal(checkpoint.kNorm.count, train);
  assert.equal(await page.getByTestId('term-mean-K_NORM').innerText(), String(Number(checkpoint.kNorm.mean.toPrecision(4))));
  assert.equal(await page.getByTestId('term-mean-K_TRACE').innerText(), String(Number(checkpoint.kTrace.mean.toPrecision(4))));
  // The queue below lists it too, finished.
  await page.locator(`[data-testid="job-row"][data-job-id="${jobId}"][data-status="COMPLETED"]`).waitFor({ timeout: 20_000 });
  await browser.screenshot(page, 'jobs', { fullPage: true });

  // A READER: the queue, no form.
  await page.evaluate((key) => (globalThis as any).localStorage.setItem('tangent.apiKey', key), keys.reader);
  await page.reload();
  await page.getByTestId('viewer-role').and(page.getByText('reader')).waitFor();
  await page.getByTestId('reader-note').waitFor();
  await page.locator(`[data-testid="job-row"][data-job-id="${jobId}"]`).waitFor();
  assert.equal(await page.getByTestId('compute-form').count(), 0, 'a READER sees no form');
  assert.equal(await page.getByRole('button', { name: 'Cancel job' }).count(), 0);

  // That key revoked while the page is open: the next request refused asks for another key.
  const { viewer } = await seed.gql(`{ viewer { apiKey { id } } }`, {}, { authorization: `Bearer ${keys.reader}` });
  await seed.gql(`mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, { id: viewer.apiKey.id });
  await page.getByRole('link', { name: 'Home' }).first().click();
  await page.getByText('The server refused this key.').waitFor({ timeout: 20_000 });
  assert.equal(await page.getByRole('textbox', { name: 'API key' }).count(), 1);

  assert.deepEqual(browser.offHost, [], 'nothing asked for beyond this server');
  assert.deepEqual(browser.problems, [], 'no console or page errors');
});
