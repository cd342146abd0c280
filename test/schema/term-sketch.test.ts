import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { upsertSamples } from '../../src/modules/datasets/service.js';
import { columnField, writeMetricColumns } from '../../src/modules/terms/metrics.js';
import { CLIENT_PRODUCER } from '../../src/modules/terms/producers.js';
import { seededRandom } from '../../src/platform/random.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Quantiles over every sample come from a sketch kept per (checkpoint, term): the exact quantiles
 * on a grid of p = i/1000, rebuilt on the first read after the values change. What the schema
 * promises: at a grid point the exact value; elsewhere a value between the exact quantiles at
 * p − 0.001 and p + 0.001; exact for cells of at most 10,000 values and with `exact: true`; and a
 * write is seen by the next read. 12,000 samples: the whole checkpoint is over the exact-below
 * size, each class under it.
 */
const N = 12_000;
const CLASSES = ['a', 'b', 'c'];
const GRID = 1000;
const AT = [0, 0.001, 0.0123, 0.25, 0.5, 0.61234, 0.7777, 0.99, 0.9995, 1];

let t: TestServer;
let checkpointId: number;
let sampleIds: number[];
/** The stored kNorm per sample index, in float32 as stored. */
let values: number[];
let labels: number[];

before(async () => {
  t = await startTestServer();
  const random = seededRandom(11);
  const db = t.db;
  const [dataset] = await db.sql.query<{ id: number }>(`INSERT INTO dataset (name, length, channels, class_names) VALUES ('sketch', 1, 1, $1::text[]) RETURNING id`, [CLASSES]);
  const shape = { id: Number(dataset!.id), length: 1, channels: 1, classNames: CLASSES };
  labels = Array.from({ length: N }, () => (random() < 0.6 ? 0 : random() < 0.75 ? 1 : 2));
  const indices = Int32Array.from({ length: N }, (_, i) => i);
  await db.transaction((tx) =>
    upsertSamples(tx, shape, { indices, labels: Int32Array.from(labels), splits: indices.reduce<string[]>((a, i) => (a.push(i % 4 === 0 ? 'validation' : 'train'), a), []), series: new Float32Array(N) }, (row, column) => `${column}[${row}]`),
  );
  const [model] = await db.sql.query<{ id: number }>(
    `INSERT INTO model (name, format, architecture, input_length, channels, num_classes) VALUES ('sketch', 'BUILTIN', 'cnn1d', 1, 1, 3) RETURNING id`,
  );
  const [run] = await db.sql.query<{ id: number }>(`INSERT INTO run (name, model_id, dataset_id, config) VALUES ('sketch', $1, $2, '{}') RETURNING id`, [Number(model!.id), shape.id]);
  const [checkpoint] = await db.sql.query<{ id: number }>(
    `INSERT INTO checkpoint (run_id, step, learning_rate, weight_bytes, weight_sha256) VALUES ($1, 1, 0.001, 0, 'sketch') RETURNING id`,
    [Number(run!.id)],
  );
  checkpointId = Number(checkpoint!.id);
  // Log-normal: skewed, with a long upper tail, where a coarse summary would show.
  const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
  const kNorm = Float32Array.from({ length: N }, () => Math.exp(gauss()));
  values = Array.from(kNorm);
  await writeMetricColumns(db, { id: checkpointId, datasetId: shape.id, numClasses: 3 }, { sampleIndices: indices, columns: { kNorm } }, CLIENT_PRODUCER, columnField('metrics'));
  const rows = await db.sql.query<{ id: number; index: number }>('SELECT id, index FROM sample WHERE dataset_id = $1 ORDER BY index', [shape.id]);
  sampleIds = rows.map((r) => Number(r.id));
});
after(() => t?.close());

/** percentile_cont over sorted values, in float64 as PostgreSQL computes it. */
function exactQuantile(sorted: readonly number[], p: number): number {
  const x = p * (sorted.length - 1);
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo]! + (x - lo) * (sorted[hi]! - sorted[lo]!);
}

const STATS = `query($c: ID!, $at: [Float!]!, $filter: SampleTermFilter) { checkpoint(id: $c) { termStats(term: K_NORM, filter: $filter) {
  count mean min max
  sketch: quantiles(at: $at) { p value }
  exact: quantiles(at: $at, exact: true) { p value }
  byClass { label count quantiles(at: $at) { p value } }
} } }`;

function close(actual: number, expected: number, what: string, rel = 1e-9) {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

/** Checks the answers against the values as they are now: the promised bounds, and exactness where it is promised. */
async function checkAgainst(current: number[]) {
  const data = await t.gql(STATS, { c: String(checkpointId), at: AT });
  const stats = data.checkpoint.termStats;
  const sorted = [...current].sort((a, b) => a - b);
  assert.equal(stats.count, N);
  close(stats.mean, current.reduce((a, b) => a + b, 0) / N, 'mean', 1e-6);
  assert.equal(Math.fround(stats.min), sorted[0]);
  assert.equal(Math.fround(stats.max), sorted.at(-1));
  let differs = 0;
  for (const [i, p] of AT.entries()) {
    const sketch = stats.sketch[i].value as number;
    close(stats.exact[i].value, exactQuantile(sorted, p), `exact q${p}`);
    const onGrid = Math.abs(p * GRID - Math.round(p * GRID)) < 1e-9;
    if (onGrid) close(sketch, exactQuantile(sorted, p), `sketch q${p} on the grid`);
    const lower = exactQuantile(sorted, Math.max(0, p - 1 / GRID));
    const upper = exactQuantile(sorted, Math.min(1, p + 1 / GRID));
    assert.ok(sketch >= lower - 1e-9 && sketch <= upper + 1e-9, `sketch q${p} = ${sketch} within [q(p − 0.001), q(p + 0.001)] = [${lower}, ${upper}]`);
    if (Math.abs(sketch - exactQuantile(sorted, p)) > 1e-9) differs++;
  }
  // Off the grid the sketch interpolates between grid points, which is not percentile_cont's value.
  assert.ok(differs > 0, 'the default answer came from the sketch, not from a sort');
  // Each class has fewer than 10,000 values: exact.
  for (const cls of stats.byClass) {
    const own = current.filter((_, i) => labels[i] === cls.label).sort((a, b) => a - b);
    assert.equal(cls.count, own.length);
    for (const q of cls.quantiles) close(q.value, exactQuantile(own, q.p), `class ${cls.label} q${q.p}`);
  }
}

test('quantiles over every sample come from the sketch: exact on the grid, within 0.001 in rank elsewhere; exact: true and small classes are exact', async () => {
  await checkAgainst(values);
  // Stored: the checkpoint and each class, at the checkpoint's current epoch.
  const rows = await t.db.sql.query<{ label: number; current: boolean }>(
    `SELECT t.label, t.epoch = coalesce(e.epoch, 0) AS current FROM term_sketch t LEFT JOIN term_sketch_epoch e USING (checkpoint_id)
     WHERE t.checkpoint_id = $1 AND t.term = 'K_NORM' ORDER BY t.label`,
    [checkpointId],
  );
  assert.deepEqual(
    rows.map((r) => [Number(r.label), r.current]),
    [
      [-1, true],
      [0, true],
      [1, true],
      [2, true],
    ],
  );
});

test('a write is seen by the next read: the sketch is rebuilt from the new values', async () => {
  await checkAgainst(values);
  // A quarter of the samples get ten times their kNorm: the upper quantiles move.
  const changed = values.map((v, i) => (i % 4 === 1 ? Math.fround(v * 10) : v));
  const metrics = sampleIds.flatMap((id, i) => (i % 4 === 1 ? [{ sampleId: String(id), kNorm: changed[i] }] : []));
  await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, { c: String(checkpointId), m: metrics });
  values = changed;
  await checkAgainst(values);
});

test('a filter that leaves samples out is answered exactly, not from the sketch', async () => {
  const data = await t.gql(STATS, { c: String(checkpointId), at: AT, filter: { splits: ['train'] } });
  const stats = data.checkpoint.termStats;
  const train = values.filter((_, i) => i % 4 !== 0).sort((a, b) => a - b);
  assert.equal(stats.count, train.length);
  for (const q of stats.sketch) close(q.value, exactQuantile(train, q.p), `train q${q.p}`);
});
