import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeMetrics } from '../../src/modules/terms/metrics.js';
import { codes, createModelAndRun } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** Bulk logging over HTTP: columnar samples and metrics, all-or-nothing batches, idempotent re-sends. */
let t: TestServer;
before(async () => {
  t = withRetry(await startTestServer({ env: { TANGENT_MAX_BULK_ROWS: '60000' } }));
});

/**
 * The embedded database runs in this process and blocks its event loop for seconds on 100k-row
 * statements; the server's keep-alive timer then closes an idle socket just as the client reuses it
 * (ECONNRESET). Every mutation here is idempotent, so the client does what a real one should: it
 * sends the request once more on a transport failure (never on a GraphQL error).
 */
function withRetry(server: TestServer): TestServer {
  const once = server.request;
  const request: TestServer['request'] = async (...args) => {
    try {
      return await once(...args);
    } catch (error) {
      if (error instanceof TypeError && error.message === 'fetch failed') return once(...args);
      throw error;
    }
  };
  return {
    ...server,
    request,
    async gql(...args) {
      const result = await request(...args);
      if (result.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors, null, 2)}`);
      return result.data as never;
    },
  };
}
after(() => t?.close());

const b64 = (values: Float32Array | Int32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');

const ADD_BULK = /* GraphQL */ `
  mutation($id: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $id, input: $input) { added unchanged dataset { sampleCount } } }
`;
const LOG = /* GraphQL */ `
  mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written checkpoint { id } } }
`;
const CHECKPOINT = /* GraphQL */ `
  mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }
`;

let seq = 0;
/** A dataset of `n` samples (length 4, 1 channel, 3 classes) added in bulk, and a run with one checkpoint on it. */
async function setup(n: number) {
  const name = `bulk-${process.pid}-${seq++}`;
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
    input: { name, length: 4, classNames: ['a', 'b', 'c'] },
  });
  const datasetId: string = createDataset.id;
  const indices = Int32Array.from({ length: n }, (_, i) => i);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const series = Float32Array.from({ length: n * 4 }, (_, k) => Math.sin(k) * 10);
  for (let start = 0; start < n; start += 50_000) {
    const end = Math.min(n, start + 50_000);
    const res = await t.gql(ADD_BULK, {
      id: datasetId,
      input: { indices: b64(indices.subarray(start, end)), labels: b64(labels.subarray(start, end)), split: 'train', series: b64(series.subarray(start * 4, end * 4)) },
    });
    assert.equal(res.addSamplesBulk.added, end - start);
  }
  const { runId } = await createModelAndRun(t, { id: datasetId, length: 4, channels: 1, classes: 3 });
  const weights = new Float32Array([0.5, -0.25]);
  const { createCheckpoint } = await t.gql(CHECKPOINT, {
    input: { runId, step: 1, weightSpecs: [{ name: 'w', shape: [2], dtype: 'float32' }], weightData: b64(weights) },
  });
  const rows = await t.db.sql.query<{ id: number; index: number }>('SELECT id, index FROM sample WHERE dataset_id = $1 ORDER BY index', [Number(datasetId)]);
  const sampleIds = Int32Array.from(rows, (r) => Number(r.id));
  return { datasetId, runId, checkpointId: createCheckpoint.id as string, sampleIds };
}

/** Metric columns for n rows with values derived from a seed. */
function columns(n: number, seed = 1) {
  const loss = Float32Array.from({ length: n }, (_, i) => Math.abs(Math.sin(i * seed)) * 3);
  const correct = Array.from({ length: n }, (_, i) => (i * seed) % 3 !== 0);
  const logits = Float32Array.from({ length: n * 3 }, (_, k) => Math.cos(k + seed) * 5);
  const kNorm = Float32Array.from({ length: n }, (_, i) => i / 7 + seed);
  return { loss, correct, logits, kNorm };
}

/** The checkpoint's stored rows in sample-index order, everything but updated_at. */
async function dump(checkpointId: string) {
  return t.db.sql.query<Record<string, unknown>>(
    `SELECT s.index, m.loss, m.loss_src, m.correct, m.correct_src, m.logits, m.logits_src, m.k_norm, m.k_norm_src, m.g_norm
     FROM sample_metric m JOIN sample s ON s.id = m.sample_id WHERE m.checkpoint_id = $1 ORDER BY s.index`,
    [Number(checkpointId)],
  );
}

/** A digest of every stored value and provenance of a checkpoint (cheap to compare for 100k rows). */
async function fingerprint(checkpointId: string) {
  const [row] = await t.db.sql.query<{ n: number; digest: string }>(
    `SELECT count(*)::int AS n, md5(string_agg(concat_ws(' ', sample_id, loss, loss_src, correct, correct_src, logits, logits_src, k_norm, k_norm_src), ',' ORDER BY sample_id)) AS digest
     FROM sample_metric WHERE checkpoint_id = $1`,
    [Number(checkpointId)],
  );
  return row;
}

describe('bulk samples and metrics', () => {
  test('100,000 metric rows logged in a few requests read back exactly, and re-sending them changes nothing', async () => {
    const n = 100_000;
    const { checkpointId, sampleIds } = await setup(n);
    const c = columns(n);
    const parts = [
      [0, 30_000],
      [30_000, 60_000],
      [60_000, 80_000],
      [80_000, 100_000],
    ] as const;
    for (const [p, [start, end]] of parts.entries()) {
      // Half the requests name samples by id in base64, half by position as JSON arrays.
      const refs =
        p % 2 === 0
          ? { sampleIds: b64(sampleIds.subarray(start, end)) }
          : { sampleIndices: Array.from({ length: end - start }, (_, i) => start + i) };
      const res = await t.gql(LOG, {
        c: checkpointId,
        input: {
          ...refs,
          loss: b64(c.loss.subarray(start, end)),
          correct: c.correct.slice(start, end),
          logits: p % 2 === 0 ? b64(c.logits.subarray(start * 3, end * 3)) : Array.from(c.logits.subarray(start * 3, end * 3)),
          kNorm: b64(c.kNorm.subarray(start, end)),
        },
      });
      assert.equal(res.logMetrics.written, end - start);
    }
    const stored = await t.db.sql.query<{ index: number; loss: number; correct: boolean; logits: number[]; k_norm: number; g_norm: number | null }>(
      `SELECT s.index, m.loss, m.correct, m.logits, m.k_norm, m.g_norm FROM sample_metric m JOIN sample s ON s.id = m.sample_id
       WHERE m.checkpoint_id = $1 ORDER BY s.index`,
      [Number(checkpointId)],
    );
    assert.equal(stored.length, n);
    for (let i = 0; i < n; i++) {
      const row = stored[i]!;
      // float4 comes back as the float32 value; compare bit for bit through Math.fround.
      if (Number(row.index) !== i || Math.fround(row.loss) !== c.loss[i] || row.correct !== c.correct[i] || Math.fround(row.k_norm) !== c.kNorm[i] || row.g_norm !== null) {
        assert.fail(`row ${i} differs: ${JSON.stringify(row)}`);
      }
      for (let k = 0; k < 3; k++) if (Math.fround(row.logits[k]!) !== c.logits[i * 3 + k]) assert.fail(`row ${i} logit ${k} differs`);
    }
    const page = await t.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 2) { totalCount nodes { loss logits provenance { term producer { kind } } } } } }`, { id: checkpointId });
    assert.equal(page.checkpoint.metrics.totalCount, n);
    assert.deepEqual(page.checkpoint.metrics.nodes[0].logits.map(Math.fround), Array.from(c.logits.subarray(0, 3)));
    assert.deepEqual(
      page.checkpoint.metrics.nodes[0].provenance.map((p: any) => `${p.term}:${p.producer.kind}`),
      ['LOSS:CLIENT', 'CORRECT:CLIENT', 'LOGITS:CLIENT', 'K_NORM:CLIENT'],
    );

    // The same batch again: harmless, the table is the same.
    const before = await fingerprint(checkpointId);
    const again = await t.gql(LOG, {
      c: checkpointId,
      input: { sampleIds: b64(sampleIds.subarray(0, 10_000)), loss: b64(c.loss.subarray(0, 10_000)), correct: c.correct.slice(0, 10_000), logits: b64(c.logits.subarray(0, 30_000)), kNorm: b64(c.kNorm.subarray(0, 10_000)) },
    });
    assert.equal(again.logMetrics.written, 10_000);
    assert.deepEqual(await fingerprint(checkpointId), before);
  });

  test('a batch with one bad row leaves the database unchanged and names the row', async () => {
    const n = 5_000;
    const { checkpointId, sampleIds, datasetId } = await setup(n);
    const c = columns(n, 2);
    // Rows 0…999 are stored first; every bad batch below would overwrite them and add 1000…4999.
    await t.gql(LOG, { c: checkpointId, input: { sampleIds: b64(sampleIds.subarray(0, 1000)), loss: b64(c.loss.subarray(0, 1000)), kNorm: b64(c.kNorm.subarray(0, 1000)) } });
    const before = await dump(checkpointId);
    const c2 = columns(n, 3);
    const good = () => ({ sampleIds: new Int32Array(sampleIds), loss: new Float32Array(c2.loss), logits: new Float32Array(c2.logits), kNorm: new Float32Array(c2.kNorm), correct: [...c2.correct] });
    const send = (batch: ReturnType<typeof good>, extra: Record<string, unknown> = {}) =>
      t.request(LOG, { c: checkpointId, input: { sampleIds: b64(batch.sampleIds), loss: b64(batch.loss), logits: b64(batch.logits), kNorm: b64(batch.kNorm), correct: batch.correct, ...extra } });

    const nan = good();
    nan.loss[3217] = Number.NaN;
    const nanRes = await send(nan);
    assert.deepEqual(codes(nanRes), ['BAD_USER_INPUT']);
    assert.equal(nanRes.errors![0]!.extensions!.field, 'input.loss[3217]');
    assert.equal(nanRes.errors![0]!.extensions!.row, 3217);
    assert.match(nanRes.errors![0]!.message, /Row 3217/);

    const inf = good();
    inf.logits[2500 * 3 + 1] = Number.POSITIVE_INFINITY;
    const infRes = await send(inf);
    assert.equal(infRes.errors![0]!.extensions!.field, 'input.logits[2500]');

    const unknown = good();
    unknown.sampleIds[4321] = 2_000_000_000;
    const unknownRes = await send(unknown);
    assert.deepEqual(codes(unknownRes), ['BAD_USER_INPUT']);
    assert.equal(unknownRes.errors![0]!.extensions!.field, 'input.sampleIds[4321]');

    // A sample of another dataset is not one of this run's samples, even though it exists.
    const other = await setup(3);
    const foreign = good();
    foreign.sampleIds[1500] = other.sampleIds[1]!;
    const foreignRes = await send(foreign);
    assert.equal(foreignRes.errors![0]!.extensions!.field, 'input.sampleIds[1500]');
    assert.match(foreignRes.errors![0]!.message, /not a sample of this run's dataset/);

    const twice = good();
    twice.sampleIds[4000] = twice.sampleIds[10]!;
    const twiceRes = await send(twice);
    assert.equal(twiceRes.errors![0]!.extensions!.field, 'input.sampleIds[4000]');

    const short = good();
    const shortRes = await send(short, { logits: b64(short.logits.subarray(0, 3 * n - 2)) });
    assert.deepEqual(codes(shortRes), ['BAD_USER_INPUT']);
    assert.equal(shortRes.errors![0]!.extensions!.field, 'input.logits[4999]');

    const correct = good();
    const correctRes = await send(correct, { correct: correct.correct.slice(1) });
    assert.equal(correctRes.errors![0]!.extensions!.field, 'input.correct[4999]');

    const byIndex = await t.request(LOG, { c: checkpointId, input: { sampleIndices: [0, 1, n + 5], loss: [1, 2, 3] } });
    assert.equal(byIndex.errors![0]!.extensions!.field, 'input.sampleIndices[2]');

    const both = await t.request(LOG, { c: checkpointId, input: { sampleIndices: [0], sampleIds: [Number(sampleIds[0])], loss: [1] } });
    assert.deepEqual(codes(both), ['BAD_USER_INPUT']);

    const notNumber = await t.request(LOG, { c: checkpointId, input: { sampleIndices: [0, 1], loss: [1, 'x'] } });
    assert.deepEqual(codes(notNumber), ['BAD_USER_INPUT']);

    const notBase64 = await t.request(LOG, { c: checkpointId, input: { sampleIndices: [0], loss: 'AAA' } });
    assert.deepEqual(codes(notBase64), ['BAD_USER_INPUT']);

    const tooMany = await t.request(LOG, { c: checkpointId, input: { sampleIds: b64(new Int32Array(60_001).fill(1)) } });
    assert.deepEqual(codes(tooMany), ['BAD_USER_INPUT']);
    assert.match(tooMany.errors![0]!.message, /at most 60000/);

    const missing = await t.request(LOG, { c: '999999', input: { sampleIndices: [0], loss: [1] } });
    assert.deepEqual(codes(missing), ['NOT_FOUND']);

    assert.deepEqual(await dump(checkpointId), before, 'no refused batch changed the table');
    assert.ok(datasetId);
  });

  test('concurrent batches: the same one twice and overlapping ones all land, in one table', async () => {
    const { checkpointId, sampleIds } = await setup(6000);
    const c = columns(6000, 4);
    const batch = (start: number, end: number, seed: number) => ({
      c: checkpointId,
      input: { sampleIds: b64(sampleIds.subarray(start, end)), loss: b64(c.loss.subarray(start, end).map((v) => v + seed)), kNorm: b64(c.kNorm.subarray(start, end)) },
    });
    const results = await Promise.all([t.gql(LOG, batch(0, 4000, 0)), t.gql(LOG, batch(0, 4000, 0)), t.gql(LOG, batch(2000, 6000, 1)), t.gql(LOG, batch(1000, 5000, 2))]);
    assert.deepEqual(results.map((r) => r.logMetrics.written), [4000, 4000, 4000, 4000]);
    const stored = await fingerprint(checkpointId);
    assert.equal(stored!.n, 6000);
    const again = await Promise.all([t.gql(LOG, batch(0, 6000, 7)), t.gql(LOG, batch(0, 6000, 7))]);
    assert.deepEqual(again.map((r) => r.logMetrics.written), [6000, 6000]);
    const [row] = await t.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_metric WHERE checkpoint_id = $1 AND loss >= 7', [Number(checkpointId)]);
    assert.equal(row!.n, 6000, 'the last batch, sent twice at once, is what the table holds');
  });

  test('a value Tangent computed is never overwritten by a client: a differing one is a CONFLICT naming the row', async () => {
    const { checkpointId, sampleIds, datasetId } = await setup(50);
    const shape = { id: Number(checkpointId), datasetId: Number(datasetId), numClasses: 3 };
    await writeMetrics(t.db, shape, Array.from({ length: 50 }, (_, i) => ({ sampleId: sampleIds[i]!, kNorm: i + 0.5 })), { kind: 'SERVER', backend: 'cpu', version: 'test' });
    const before = await dump(checkpointId);
    const kNorm = Float32Array.from({ length: 50 }, (_, i) => i + 0.5);
    kNorm[37] = 99;
    const loss = new Float32Array(50).fill(0.25);
    const conflict = await t.request(LOG, { c: checkpointId, input: { sampleIds: b64(sampleIds), kNorm: b64(kNorm), loss: b64(loss) } });
    assert.deepEqual(codes(conflict), ['CONFLICT']);
    assert.equal(conflict.errors![0]!.extensions!.row, 37);
    assert.match(conflict.errors![0]!.message, /Row 37/);
    assert.deepEqual(await dump(checkpointId), before);

    // Equal values are fine, keep their server provenance, and the client's loss lands beside them.
    kNorm[37] = 37.5;
    const ok = await t.gql(LOG, { c: checkpointId, input: { sampleIds: b64(sampleIds), kNorm: b64(kNorm), loss: b64(loss) } });
    assert.equal(ok.logMetrics.written, 50);
    const read = await t.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1) { nodes { loss kNorm provenance { term producer { kind backend } } } } } }`, { id: checkpointId });
    assert.deepEqual(read.checkpoint.metrics.nodes[0], {
      loss: 0.25,
      kNorm: 0.5,
      provenance: [
        { term: 'LOSS', producer: { kind: 'CLIENT', backend: null } },
        { term: 'K_NORM', producer: { kind: 'SERVER', backend: 'cpu' } },
      ],
    });
  });

  test('row-wise recordMetrics and columnar logMetrics write the same rows through one writer', async () => {
    const { checkpointId, sampleIds } = await setup(20);
    const c = columns(20, 5);
    const rows = Array.from({ length: 20 }, (_, i) => ({ sampleId: String(sampleIds[i]), loss: c.loss[i], correct: c.correct[i], logits: Array.from(c.logits.subarray(i * 3, i * 3 + 3)) }));
    await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, { c: checkpointId, m: rows });
    const rowWise = await dump(checkpointId);
    await t.gql(LOG, { c: checkpointId, input: { sampleIds: Array.from(sampleIds, String), loss: b64(c.loss), correct: c.correct, logits: b64(c.logits) } });
    assert.deepEqual(await dump(checkpointId), rowWise);
    const bad = await t.request(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
      c: checkpointId,
      m: [rows[0], { ...rows[1], sampleId: '2000000000' }],
    });
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
    assert.equal(bad.errors![0]!.extensions!.field, 'metrics[1].sampleId');
  });

  test('bulk samples: all or none, identical re-sends are harmless, a different sample at a stored index is a CONFLICT', async () => {
    const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
      input: { name: `samples-${process.pid}`, length: 3, channels: 2, classNames: ['x', 'y'] },
    });
    const id = createDataset.id;
    const n = 1000;
    const series = Float32Array.from({ length: n * 6 }, (_, k) => k * 0.5 - 7);
    const input = {
      indices: b64(Int32Array.from({ length: n }, (_, i) => i * 2)),
      labels: Array.from({ length: n }, (_, i) => i % 2),
      splits: Array.from({ length: n }, (_, i) => (i < 800 ? 'train' : 'test')),
      series: b64(series),
    };
    const first = await t.gql(ADD_BULK, { id, input });
    assert.deepEqual(first.addSamplesBulk, { added: n, unchanged: 0, dataset: { sampleCount: n } });
    const again = await t.gql(ADD_BULK, { id, input });
    assert.deepEqual(again.addSamplesBulk, { added: 0, unchanged: n, dataset: { sampleCount: n } });
    const sample = await t.gql(`query($id: ID!) { dataset(id: $id) { splits { split count } samples(first: 2, filter: { indexFrom: 2 }) { nodes { index label className split series } } } }`, { id });
    assert.deepEqual(sample.dataset.splits, [{ split: 'test', count: 200 }, { split: 'train', count: 800 }]);
    assert.deepEqual(sample.dataset.samples.nodes[0], { index: 2, label: 1, className: 'y', split: 'train', series: Array.from(series.subarray(6, 12)) });

    const changed = new Float32Array(series);
    changed[600 * 6 + 4] = 1234.5;
    const conflict = await t.request(ADD_BULK, { id, input: { ...input, series: b64(changed) } });
    assert.deepEqual(codes(conflict), ['CONFLICT']);
    assert.equal(conflict.errors![0]!.extensions!.field, 'input.indices[600]');

    // New samples with one bad label: none of them lands.
    const more = { indices: [5001, 5003, 5005], labels: [0, 2, 1], split: 'validation', series: Array.from({ length: 18 }, (_, k) => k) };
    const badLabel = await t.request(ADD_BULK, { id, input: more });
    assert.equal(badLabel.errors![0]!.extensions!.field, 'input.labels[1]');
    const shortSeries = await t.request(ADD_BULK, { id, input: { ...more, labels: [0, 1, 1], series: more.series.slice(0, 14) } });
    assert.equal(shortSeries.errors![0]!.extensions!.field, 'input.series[2]');
    const nanSeries = await t.request(ADD_BULK, { id, input: { ...more, labels: [0, 1, 1], series: b64(Float32Array.from(more.series, (v) => (v === 13 ? Number.NaN : v))) } });
    assert.equal(nanSeries.errors![0]!.extensions!.field, 'input.series[2]');
    const dup = await t.request(ADD_BULK, { id, input: { ...more, labels: [0, 1, 1], indices: [5001, 5003, 5001] } });
    assert.equal(dup.errors![0]!.extensions!.field, 'input.indices[2]');
    const count = await t.gql(`query($id: ID!) { dataset(id: $id) { sampleCount } }`, { id });
    assert.equal(count.dataset.sampleCount, n);
    const limits = await t.gql(`{ ingestLimits { maxRows maxBodyBytes } }`);
    assert.equal(limits.ingestLimits.maxRows, 60_000);
  });
});
