/**
 * `npm run bench:explorer -- --json`: the Explorer's checkpoint page at 100,000 samples, in headless
 * Chromium (Debian's /usr/bin/chromium, --disable-gpu, as the browser tests run it).
 *
 * Loads a data set of `--samples` samples (10 classes, series of `--length` points) with every scalar
 * term at one checkpoint through the bulk paths (upsertSamples and writeMetricColumns: COPY, as
 * bench:query does), starts the server in-process on port 0 (NODE_ENV=production), and measures:
 *
 * - **time until interactive**: from navigation start to the first animation frame at which both
 *   the loss/kNorm scatter has drawn every sample (`data-ready="true"` on its canvas, with
 *   `data-points` = the sample count) and the ranked table shows its first rows (`ranked-row`
 *   elements). Read in the page (performance.now() at a requestAnimationFrame probe, so it is when a
 *   user would see both), `--reps` times, each in a fresh browser context (cold cache); the median is
 *   the result. The scatter's and the table's own ready times are reported beside it.
 * - **frame time while panning the scatter**: the mouse drags the scatter (Playwright's mouse, 60 moves
 *   per drag, 4 drags back and forth) just after the page is interactive. Two numbers per frame: the
 *   scatter's own draw time (`window.__explorerFrameTimes`, which the chart records for every frame
 *   it draws), and the interval between consecutive animation frames during the drag (what the eye
 *   sees: draw, composite and everything else on the main thread, the embedding's data fetch
 *   included). The target is on the interval's p95.
 *
 * Targets: interactive < 2000 ms, frame < 50 ms. The last line printed is one JSON object.
 *
 * Flags: --json (only the JSON line on stdout), --url postgresql://postgres@127.0.0.1:5432/test (the
 * server the database is created on), --db tangent_bench_explorer, --samples 100000, --length 32,
 * --reps 3, --reuse (keep an already loaded database), --keep (do not drop it). Needs the Explorer
 * built (`npm run build:web`).
 */
import { flag, opt } from './args.js';

process.env.NODE_ENV ??= 'production';

const jsonOnly = flag('json');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const adminUrl = opt('url', 'postgresql://postgres@127.0.0.1:5432/test');
const dbName = opt('db', 'tangent_bench_explorer');
const nSamples = Number(opt('samples', '100000'));
const seriesLength = Number(opt('length', '32'));
const reps = Number(opt('reps', '3'));
const CLASSES = 10;
const CLASS_NAMES = Array.from({ length: CLASSES }, (_, i) => `class-${i}`);
const DATASET = `bench-explorer-${nSamples}x${seriesLength}`;
if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) throw new Error('--db must be a plain lowercase identifier');

// Loaded after NODE_ENV is set: graphql-js and Express read it once, when they load.
const { existsSync } = await import('node:fs');
const os = await import('node:os');
const { default: pg } = await import('pg');
const { chromium } = await import('playwright-core');
const { loadConfig } = await import('../src/platform/config.js');
const { openDatabase } = await import('../src/platform/db/database.js');
const { migrate } = await import('../src/platform/db/migrate.js');
const { createLogger } = await import('../src/platform/logger.js');
const { createServer } = await import('../src/server.js');
const { upsertSamples } = await import('../src/modules/datasets/service.js');
const { columnField, writeMetricColumns } = await import('../src/modules/terms/metrics.js');
const { CLIENT_PRODUCER } = await import('../src/modules/terms/producers.js');
const { seededRandom } = await import('../src/platform/random.js');
const { CHROMIUM, CHROMIUM_ARGS } = await import('../test/helpers/browser.js');
type Database = Awaited<ReturnType<typeof openDatabase>>;

async function admin(sql: string): Promise<import('pg').QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]! : NaN);
  return { n: s.length, mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)), p50: round(at(0.5)), p95: round(at(0.95)), max: round(s.at(-1) ?? NaN) };
}

/** The data set, the checkpoint and its terms, through the bulk paths; returns nothing (ids are looked up after). */
async function load(db: Database, gql: (q: string, v?: Record<string, unknown>) => Promise<any>): Promise<void> {
  const started = performance.now();
  const [dataset] = await db.sql.query<{ id: number }>(`INSERT INTO dataset (name, length, channels, class_names) VALUES ($1, $2, 1, $3::text[]) RETURNING id`, [
    DATASET,
    seriesLength,
    CLASS_NAMES,
  ]);
  const datasetId = Number(dataset!.id);
  const random = seededRandom(1);
  const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const labels = new Int32Array(nSamples).map(() => Math.floor(random() * CLASSES));
  const chunk = 50_000;
  for (let start = 0; start < nSamples; start += chunk) {
    const n = Math.min(chunk, nSamples - start);
    const indices = new Int32Array(n).map((_, i) => start + i);
    const splits = Array.from({ length: n }, () => (random() < 0.8 ? 'train' : 'test'));
    // A class-dependent sine with noise, so the embedding has something to separate.
    const series = new Float32Array(n * seriesLength);
    for (let i = 0; i < n; i++) {
      const label = labels[start + i]!;
      for (let j = 0; j < seriesLength; j++) series[i * seriesLength + j] = Math.sin(((label + 1) * j) / seriesLength * Math.PI) + 0.3 * gauss();
    }
    await db.transaction((tx) =>
      upsertSamples(tx, { id: datasetId, length: seriesLength, channels: 1, classNames: CLASS_NAMES }, { indices, labels: labels.slice(start, start + n), splits, series }, (row, column) => `${column}[${row}]`),
    );
  }
  say(`  ${nSamples} samples in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  // The model and run through the API (the page reads the model's parameter subsets), the checkpoint
  // row directly: the page computes nothing, so it needs no weights.
  const { createModel } = await gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: DATASET, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [4, 6], kernelSizes: [5, 3], pool: 2, dropout: 0, seed: 3 }, inputLength: seriesLength, numClasses: CLASSES },
  });
  const { createRun } = await gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: DATASET, modelId: createModel.id, datasetId: String(datasetId), config: { learningRate: 0.001 } },
  });
  const [checkpoint] = await db.sql.query<{ id: number }>(
    `INSERT INTO checkpoint (run_id, step, learning_rate, weight_bytes, weight_sha256) VALUES ($1, 100, 0.001, 0, 'bench') RETURNING id`,
    [Number(createRun.id)],
  );
  const t0 = performance.now();
  const shape = { id: Number(checkpoint!.id), datasetId, numClasses: CLASSES };
  for (let start = 0; start < nSamples; start += chunk) {
    const n = Math.min(chunk, nSamples - start);
    const kNorm = Float32Array.from({ length: n }, () => Math.exp(gauss()));
    const loss = Float32Array.from(kNorm, (k) => Math.max(0, 0.4 * Math.log(k) + 0.8 + 0.5 * gauss()));
    const columns = {
      loss,
      correct: Array.from(loss, (l) => l < 0.9),
      kNorm,
      kTrace: Float32Array.from(kNorm, (k) => k * (1 + 0.1 * random())),
      gNorm: Float32Array.from(loss, (l) => Math.min(Math.SQRT2, 1 - Math.exp(-l))),
      aNorm: Float32Array.from({ length: n }, () => 1 + random() * 2),
      hTrace: Float32Array.from({ length: n }, () => random() * 0.9),
      hMinEig: Float32Array.from({ length: n }, () => random() * 0.01),
    };
    await writeMetricColumns(db, shape, { sampleIndices: new Int32Array(n).map((_, i) => start + i), columns }, CLIENT_PRODUCER, columnField('metrics'));
  }
  say(`  ${nSamples} metric rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await db.sql.query('ANALYZE');
}

async function main() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  if (!existsSync(new URL('../dist/web/explorer/index.html', import.meta.url))) throw new Error('The Explorer is not built: run npm run build:web');
  const exists = (await admin(`SELECT 1 FROM pg_database WHERE datname = '${dbName}'`)).rowCount! > 0;
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const log = createLogger({ logLevel: 'silent' });
  let reuse = flag('reuse') && exists;
  if (!reuse) {
    if (exists) await admin(`DROP DATABASE ${dbName} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${dbName}`);
  }
  const config = {
    ...loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', NODE_ENV: 'production', TANGENT_AUTH: 'off', TANGENT_WORKER: 'off' }),
    database: { kind: 'postgres' as const, url: url.toString(), poolSize: 10 },
  };
  const db = await openDatabase(config.database, log);
  let server: Awaited<ReturnType<typeof createServer>> | undefined;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    await migrate(db, log);
    server = await createServer(config, { db, log });
    const gql = async (query: string, variables: Record<string, unknown> = {}) => {
      const response = await fetch(server!.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      const body = (await response.json()) as { data?: any; errors?: unknown[] };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    if (reuse) {
      const [row] = await db.sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM dataset WHERE name = $1`, [DATASET]);
      reuse = Number(row!.n) === 1;
    }
    const loadStarted = performance.now();
    if (!reuse) {
      say(`loading ${nSamples} samples with their terms at one checkpoint into ${dbName} (bulk path: COPY)`);
      await load(db, gql);
    }
    const loadSeconds = round((performance.now() - loadStarted) / 1000);
    const [checkpoint] = await db.sql.query<{ id: number }>(
      `SELECT c.id FROM checkpoint c JOIN run r ON r.id = c.run_id JOIN dataset d ON d.id = r.dataset_id WHERE d.name = $1 ORDER BY c.id DESC LIMIT 1`,
      [DATASET],
    );
    const origin = new URL(server.url).origin;
    const pageUrl = `${origin}/#/checkpoints/${checkpoint!.id}`;
    say(`page: ${pageUrl}`);

    // Where the page's time goes: the scatter reads every sample's kNorm and loss as binary columns
    // (Checkpoint.termColumns, as the page asks for them); the table, one GraphQL page. Timed here from Node too.
    const serverSide = { columnsMs: [] as number[], columnsBytes: 0, tablePageMs: [] as number[] };
    const columnsQuery = `query($id: ID!) { checkpoint(id: $id) { termColumns(terms: [K_NORM, LOSS], subset: "all") { count sampleIds indices labels splits splitCodes correct columns { term values missing } } } }`;
    for (let i = 0; i < reps; i++) {
      let t0 = performance.now();
      const response = await fetch(new URL('/graphql', origin), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: columnsQuery, variables: { id: String(checkpoint!.id) } }) });
      serverSide.columnsBytes = (await response.arrayBuffer()).byteLength;
      serverSide.columnsMs.push(performance.now() - t0);
      t0 = performance.now();
      await gql(`query($id: ID!) { checkpoint(id: $id) { rankedSamples(first: 20, orderBy: { term: K_NORM, direction: DESC }) { totalCount nodes { sampleId loss kNorm } } } }`, { id: String(checkpoint!.id) });
      serverSide.tablePageMs.push(performance.now() - t0);
    }
    say(`  every sample's kNorm and loss as columns (what the scatter reads): ${stats(serverSide.columnsMs).p50} ms, ${(serverSide.columnsBytes / 2 ** 20).toFixed(1)} MiB; a table page: ${stats(serverSide.tablePageMs).p50} ms`);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const runs: { interactiveMs: number; scatterMs: number; tableMs: number; points: number; rows: number }[] = [];
    const drawMs: number[] = [];
    const frameIntervalMs: number[] = [];
    const problems: string[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      await context.route((u) => !['127.0.0.1', 'localhost'].includes(u.hostname) && !['data:', 'blob:'].includes(u.protocol), (route) => route.abort());
      // A probe at every animation frame from the very start: when each of the two became true.
      await context.addInitScript({
        content: `(() => {
          const marks = (window.__benchMarks = {});
          const probe = () => {
            const canvas = document.querySelector('[data-testid="loss-knorm-scatter"] canvas[data-ready="true"]');
            if (canvas && marks.scatter === undefined) { marks.scatter = performance.now(); marks.points = Number(canvas.dataset.points); }
            const rows = document.querySelectorAll('[data-testid="ranked-row"]').length;
            if (rows > 0 && marks.table === undefined) { marks.table = performance.now(); marks.rows = rows; }
            if (marks.scatter === undefined || marks.table === undefined) requestAnimationFrame(probe);
          };
          requestAnimationFrame(probe);
        })();`,
      });
      const page = await context.newPage();
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => m.type() === 'error' && problems.push(`console error: ${m.text()}`));
      await page.goto(pageUrl);
      const marks = (await (
        // A function, not a string: the page's CSP forbids eval, which a string predicate needs.
        await page.waitForFunction(
          () => {
            const marks = (globalThis as any).__benchMarks;
            return marks && marks.scatter !== undefined && marks.table !== undefined && marks;
          },
          undefined,
          { timeout: 120_000 },
        )
      ).jsonValue()) as { scatter: number; table: number; points: number; rows: number };
      const run = { interactiveMs: round(Math.max(marks.scatter, marks.table)), scatterMs: round(marks.scatter), tableMs: round(marks.table), points: marks.points, rows: marks.rows };
      runs.push(run);
      say(`  load ${rep + 1}: interactive ${run.interactiveMs} ms (scatter ${run.scatterMs} ms with ${run.points} points, table ${run.tableMs} ms with ${run.rows} rows)`);
      if (run.points !== nSamples) throw new Error(`the scatter drew ${run.points} points, not ${nSamples}`);

      // Pan: drag the scatter back and forth while a frame recorder runs.
      const canvas = page.locator('[data-testid="loss-knorm-scatter"] canvas').first();
      await canvas.scrollIntoViewIfNeeded();
      const box = (await canvas.boundingBox())!;
      const before = (await page.evaluate('(window.__explorerFrameTimes || []).length')) as number;
      await page.evaluate(`(() => { const f = (window.__benchFrames = []); window.__benchRecording = true; const tick = (t) => { f.push(t); if (window.__benchRecording) requestAnimationFrame(tick); }; requestAnimationFrame(tick); })()`);
      const cx = box.x + box.width / 2;
      const cy = box.y + box.height / 2;
      await page.mouse.move(cx, cy);
      await page.mouse.down();
      for (const [dx, dy] of [
        [150, 60],
        [-150, -60],
        [-150, 40],
        [150, -40],
      ] as const) {
        await page.mouse.move(cx + dx, cy + dy, { steps: 60 });
        await page.mouse.move(cx, cy, { steps: 60 });
      }
      await page.mouse.up();
      const frames = (await page.evaluate('(() => { window.__benchRecording = false; return window.__benchFrames; })()')) as number[];
      const draws = (await page.evaluate(`(window.__explorerFrameTimes || []).slice(${before})`)) as number[];
      drawMs.push(...draws);
      for (let i = 1; i < frames.length; i++) frameIntervalMs.push(frames[i]! - frames[i - 1]!);
      say(`  pan ${rep + 1}: ${draws.length} frames drawn, draw ${stats(draws).p50} ms median, ${stats(draws).p95} ms p95`);
      await context.close();
    }

    const interactive = stats(runs.map((r) => r.interactiveMs));
    const draw = stats(drawMs);
    const interval = stats(frameIntervalMs);
    const result = {
      bench: 'explorer',
      samples: nSamples,
      seriesLength,
      reps,
      loadSeconds,
      interactiveMs: interactive.p50,
      interactive: { runs, ...interactive },
      scatterDrawMs: draw,
      frameIntervalMs: interval,
      serverSide: { columnsMs: stats(serverSide.columnsMs), columnsMiB: round(serverSide.columnsBytes / 2 ** 20), tablePageMs: stats(serverSide.tablePageMs) },
      targets: { interactiveMs: 2000, frameMs: 50 },
      meetsTargets: { interactive: interactive.p50 < 2000, frame: interval.p95 < 50 && draw.p95 < 50 },
      problems,
      browser: `chromium ${browser.version()} headless --disable-gpu`,
      cpus: os.cpus().length,
      loadavg: os.loadavg().map((x) => round(x, 2)),
    };
    say(`interactive: median ${interactive.p50} ms (target < 2000) · scatter draw p50 ${draw.p50} ms, p95 ${draw.p95} ms · frame interval p50 ${interval.p50} ms, p95 ${interval.p95} ms (target < 50)`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    if (!flag('keep') && !flag('reuse')) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
  }
}

await main();
