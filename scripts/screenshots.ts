/**
 * `npm run screenshots`: the README's pictures of the Explorer, docs/screenshots/run.png and
 * checkpoint.png, made the way the browser tests see the pages: the tests' seeded server
 * (test/explorer/seed.ts: GunPoint, a run Tangent trains, kNorm computed) and their offline Chromium
 * (test/helpers/browser.ts), every chart drawn before the picture is taken. The run is trained longer
 * than the tests' (they need seconds, the pictures need a run that learns). Nothing else is written.
 *
 * Flags: --epochs 50 --analyze-every 5 --learning-rate 0.01 --batch-size 8 --out docs/screenshots (relative to the
 * repository).
 */
import { openBrowser } from '../test/helpers/browser.js';
import { cleanupStack } from '../test/helpers/cleanup.js';
import { startSeededServer } from '../test/explorer/seed.js';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
};
const epochs = Number(opt('epochs', '50'));
const analyzeEvery = Number(opt('analyze-every', '5'));
const learningRate = Number(opt('learning-rate', '0.01'));
const batchSize = Number(opt('batch-size', '8'));
process.env.TANGENT_SCREENSHOTS = opt('out', 'docs/screenshots');

const cleanups: (() => unknown)[] = [];
const defer = cleanupStack({ after: (fn) => cleanups.push(fn) });
try {
  const started = performance.now();
  const seed = await startSeededServer(defer, { training: { epochs, analyzeEvery, batchSize, learningRate, trackEverySteps: 10 }, trackSamples: 8, model: { filters: [16, 32], kernelSizes: [7, 5] } });
  process.stderr.write(`seeded in ${Math.round(seed.seedMs / 1000)} s\n`);
  const browser = await openBrowser(defer, { name: 'screenshots', viewport: { width: 1400, height: 1000 } });
  const { page } = browser;
  /** Waits until every chart on the page that says whether it is drawn says it is. */
  const chartsDrawn = async () => {
    await page.waitForLoadState('networkidle');
    for (const chart of await page.locator('[data-ready]').all()) await chart.and(page.locator('[data-ready="true"]')).waitFor({ timeout: 120_000 });
    await page.waitForTimeout(300);
  };

  // The run page is taller: its probability paths come below the four curves.
  await page.setViewportSize({ width: 1400, height: 1700 });
  await page.goto(`${seed.origin}/#/runs/${seed.runId}`);
  await page.locator('main h1').first().waitFor();
  // The page has the held-out split's terms computed: the picture waits until none is pending.
  const pending = page.locator('[data-testid="curves-pending-train"], [data-testid="curves-pending-heldout"], [data-testid="paths-pending"]');
  for (let waited = 0; (await pending.count()) > 0; waited += 500) {
    if (waited > 300_000) throw new Error('the run page still shows terms pending after 5 minutes');
    await page.waitForTimeout(500);
  }
  await chartsDrawn();
  process.stderr.write(`${await browser.screenshot(page, 'run')}\n`);

  await page.setViewportSize({ width: 1400, height: 1000 });
  await page.goto(`${seed.origin}/#/checkpoints/${seed.checkpointId}`);
  await page.getByTestId('checkpoint-page').waitFor();
  // The embedding map appears (and says it is drawn) only once UMAP has run in the page.
  await page.locator('[data-testid="embedding-map"] canvas[data-ready="true"]').waitFor({ timeout: 180_000 });
  await chartsDrawn();
  process.stderr.write(`${await browser.screenshot(page, 'checkpoint')}\n`);
  if (browser.offHost.length || browser.problems.length) throw new Error(`the pages were not clean: ${JSON.stringify({ offHost: browser.offHost, problems: browser.problems })}`);
  process.stderr.write(`done in ${Math.round((performance.now() - started) / 1000)} s\n`);
} finally {
  for (const fn of cleanups) await fn();
}
