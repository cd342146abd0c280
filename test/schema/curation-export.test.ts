import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { OPEN_CALLER } from '../../src/platform/auth/roles.js';
import { createLoaders } from '../../src/modules/loaders.js';
import { readExport } from '../../src/modules/curation/export.js';
import { prepareQuery } from '../../src/modules/curation/rank.js';
import { quietLog } from '../helpers/database.js';
import { createModelAndRun } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const BIN = new URL('../../bin/tangent.js', import.meta.url).pathname;
const run = promisify(execFile);

/** Rows of the large export: enough for many batches and for a response bigger than socket buffers. */
const N = 12_000;

let t: TestServer;
let checkpointId: string;
let selectionId: string;

before(async () => {
  t = await startTestServer();
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
    input: { name: 'export-large', length: 1, channels: 1, classNames: ['a', 'b'] },
  });
  for (let start = 0; start < N; start += 6_000) {
    const samples = Array.from({ length: 6_000 }, (_, i) => ({ index: start + i, label: (start + i) % 2, split: 'train', series: [0] }));
    await t.gql(`mutation($d: ID!, $s: [SampleInput!]!) { addSamples(datasetId: $d, samples: $s) { added } }`, { d: createDataset.id, s: samples });
  }
  const { runId } = await createModelAndRun(t, { id: createDataset.id, length: 1, channels: 1, classes: 2 });
  const { createCheckpoint } = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
    input: { runId, step: 1, learningRate: 1e-3, weightSpecs: [{ name: 'w', shape: [1], dtype: 'float32' }], weightData: Buffer.alloc(4).toString('base64') },
  });
  checkpointId = createCheckpoint.id;
  const ids: string[] = [];
  let after: string | null = null;
  do {
    const data: any = await t.gql(`query($d: ID!, $after: String) { dataset(id: $d) { samples(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } nodes { id } } } }`, { d: createDataset.id, after });
    ids.push(...data.dataset.samples.nodes.map((n: any) => n.id));
    after = data.dataset.samples.pageInfo.hasNextPage ? data.dataset.samples.pageInfo.endCursor : null;
  } while (after);
  await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
    c: checkpointId,
    m: ids.map((sampleId, i) => ({ sampleId, kNorm: (i * 37) % 1001, loss: i / N })),
  });
  const { createSelection } = await t.gql(`mutation($input: CreateSelectionInput!) { createSelection(input: $input) { id sampleCount } }`, {
    input: { name: 'all', strategy: { checkpointIds: [checkpointId], method: 'TOP_FRACTION', fraction: 1 } },
  });
  assert.equal(createSelection.sampleCount, N);
  selectionId = createSelection.id;
});
after(() => t?.close());

describe('large exports stream', () => {
  test('the first rows are handed over before the rest are read, one batch at a time', async () => {
    const ctx = { db: t.db, config: t.config, log: quietLog, loaders: createLoaders(t.db), caller: OPEN_CALLER };
    const prepared = await prepareQuery(ctx, Number(checkpointId), { filter: {}, order: { term: 'K_NORM', direction: 'DESC' }, target: null });
    const seen: number[] = [];
    let handing = false;
    const total = await readExport(
      ctx,
      { kind: 'query', prepared },
      async (batch) => {
        assert.equal(handing, false, 'no batch is handed over while the previous one still is');
        handing = true;
        seen.push(batch.rows.length);
        await new Promise((resolve) => setImmediate(resolve));
        handing = false;
      },
      1_000,
    );
    assert.equal(total, N);
    assert.equal(seen[0], 1_000, 'the first batch came out while 11,000 rows were still unread');
    assert.equal(seen.length, N / 1_000);
  });

  test('over HTTP: every row arrives in order; a client that stops reading and leaves ends the export cleanly', async () => {
    const response = await fetch(new URL(`/export/selections/${selectionId}?format=jsonl`, t.url));
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-length'), null, 'streamed (chunked), not buffered');
    let lines = 0;
    let lastRank = 0;
    let rest = '';
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      const text = rest + decoder.decode(chunk, { stream: true });
      const parts = text.split('\n');
      rest = parts.pop()!;
      for (const line of parts) {
        const row = JSON.parse(line);
        assert.equal(row.rank, lastRank + 1);
        lastRank = row.rank;
        lines++;
      }
    }
    assert.equal(lines, N);

    // Read the first bytes of a CSV export, then go away.
    const controller = new AbortController();
    const partial = await fetch(new URL(`/export/selections/${selectionId}?format=csv`, t.url), { signal: controller.signal });
    const reader = partial.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^rank,score,sampleId,/);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    // The server is still answering, and (PostgreSQL) its cursor's transaction has ended.
    for (let i = 0; i < 100; i++) {
      if (t.db.kind !== 'postgres') break;
      const [row] = await t.db.sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'`,
      );
      if (Number(row!.n) === 0) break;
      assert.ok(i < 99, 'the export transaction ended after the client left');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const health = await t.gql(`query($id: ID!) { selection(id: $id) { sampleCount } }`, { id: selectionId });
    assert.equal(health.selection.sampleCount, N);
  });
});

describe('export values', () => {
  test('every cell is what the value GraphQL returns prints as: floats in and out of plain notation, -0, tiny and huge, nulls, booleans, quoted texts', async () => {
    // Floats whose PostgreSQL text differs from JavaScript's (1e-05, 1.234567e+06, -0, 1e-07) and
    // ones that do not; a class name and a split that CSV must quote or defuse.
    const floats = [0.1, 1 / 3, -0, 1e-5, 1e-6, 1e-7, 2.5e-4, 1234567, 123456.7, 3.4e38, -3.4e38, 1e-45, 42, -17.25, 0.000123456789, 7e20, 1e21];
    const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
      input: { name: 'export-values', length: 1, channels: 1, classNames: ['plain', '=SUM(A1),"x"'] },
    });
    const samples = floats.map((_, i) => ({ index: i, label: i % 2, split: i % 2 ? 'train' : 'held "out", b', series: [0] }));
    await t.gql(`mutation($d: ID!, $s: [SampleInput!]!) { addSamples(datasetId: $d, samples: $s) { added } }`, { d: createDataset.id, s: samples });
    const { runId } = await createModelAndRun(t, { id: createDataset.id, length: 1, channels: 1, classes: 2 });
    const { createCheckpoint } = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId, step: 1, learningRate: 1e-3, weightSpecs: [{ name: 'w', shape: [1], dtype: 'float32' }], weightData: Buffer.alloc(4).toString('base64') },
    });
    const c = createCheckpoint.id;
    const data = await t.gql(`query($d: ID!) { dataset(id: $d) { samples(first: 100) { nodes { id index } } } }`, { d: createDataset.id });
    const idOf = new Map(data.dataset.samples.nodes.map((n: any) => [n.index, n.id]));
    await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
      c,
      m: floats.map((x, i) => ({ sampleId: idOf.get(i), kNorm: i, loss: x, gNorm: -x, correct: i % 5 ? i % 2 === 0 : null })),
    });
    const fields = 'sampleId index label className split score loss aNorm hTrace hMinEig gNorm kNorm kTrace correct';
    const page = await t.gql(
      `query($c: ID!) { checkpoint(id: $c) { exportUrl(format: CSV, orderBy: { term: K_NORM, direction: ASC })
        rankedSamples(first: 100, orderBy: { term: K_NORM, direction: ASC }) { nodes { ${fields} } } } }`,
      { c },
    );
    const nodes: Record<string, unknown>[] = page.checkpoint.rankedSamples.nodes;
    assert.equal(nodes.length, floats.length);
    const columns = fields.split(' ');
    // What exports have always written for a parsed value (String of a number or boolean, RFC 4180 text).
    const csvCell = (v: unknown) => {
      if (v === null) return '';
      const text = typeof v === 'string' && /^[=+\-@]/.test(v) && !Number.isFinite(Number(v)) ? `'${v}` : String(v);
      return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
    };
    // sampleId is an ID (a string) in GraphQL and a number in exports.
    const value = (n: Record<string, unknown>, k: string) => (k === 'sampleId' ? Number(n[k]) : n[k]);
    const expectedCsv = `${[columns.join(','), ...nodes.map((n) => columns.map((k) => csvCell(value(n, k))).join(','))].join('\n')}\n`;
    const csv = await (await fetch(new URL(page.checkpoint.exportUrl, t.url))).text();
    assert.equal(csv, expectedCsv);
    assert.match(csv, /,0\.00001,/, '1e-05 (PostgreSQL) is written as JavaScript prints it');
    assert.match(csv, /,1234567,/);
    assert.match(csv, /,"'=SUM\(A1\),""x""",/, 'a formula-like class name is defused and quoted');

    const jsonl = await (await fetch(new URL(page.checkpoint.exportUrl.replace('format=csv', 'format=jsonl'), t.url))).text();
    const expectedJsonl = nodes.map((n) => `${JSON.stringify(Object.fromEntries(columns.map((k) => [k, value(n, k)])))}\n`).join('');
    assert.equal(jsonl, expectedJsonl);
  });
});

describe('tangent export (CLI)', () => {
  test('through a running server (--url), and straight from the database once it has stopped', async () => {
    const origin = new URL(t.url).origin;
    const viaUrl = await run(process.execPath, [BIN, 'export', '--selection', selectionId, '--format', 'csv', '--url', origin], { maxBuffer: 64 * 1024 * 1024 });
    const lines = viaUrl.stdout.trimEnd().split('\n');
    assert.equal(lines.length, N + 1);
    assert.match(lines[1]!, /^1,1000,/);

    const query = await run(
      process.execPath,
      [BIN, 'export', '--checkpoint', checkpointId, '--filter', '{"labels":[1],"terms":[{"term":"LOSS","max":0.01}]}', '--order-by', 'loss:asc', '--url', t.url],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const rows = query.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.ok(rows.length > 50);
    assert.ok(rows.every((r) => r.label === 1 && Math.fround(r.loss) <= Math.fround(0.01)));
    assert.deepEqual(rows.map((r) => r.loss), [...rows.map((r) => r.loss)].sort((a, b) => a - b));

    await t.stop();
    const env: Record<string, string> = { ...process.env, LOG_LEVEL: 'error' } as Record<string, string>;
    delete env.DATABASE_URL;
    delete env.TANGENT_DATA_DIR;
    if (t.testDb.config.kind === 'postgres') env.DATABASE_URL = t.testDb.config.url;
    else env.TANGENT_DATA_DIR = t.testDb.config.dataDir;
    const direct = await run(process.execPath, [BIN, 'export', '--selection', selectionId, '--format', 'csv'], { env, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(direct.stdout, viaUrl.stdout, 'the same bytes either way');
    const missing = await run(process.execPath, [BIN, 'export', '--checkpoint', checkpointId, '--order-by', 'K_TRACE'], { env }).catch((e) => e);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /12000 samples lack kTrace/);
  });
});
