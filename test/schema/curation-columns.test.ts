import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { curationFixture, f32, recordMetrics } from './curation-fixture.js';

/**
 * Checkpoint.termColumns: every sample of the dataset in dataset order, terms as little-endian
 * float32 base64 with NaN and a count where a value is missing; the same values rankedSamples gives.
 */

let t: TestServer;
let fx: Awaited<ReturnType<typeof curationFixture>>;

before(async () => {
  t = await startTestServer();
  fx = await curationFixture(t, { n: 150 });
});
after(() => t?.close());

const COLUMNS = /* GraphQL */ `
  query($c: ID!, $terms: [ScalarTerm!]!, $subset: String, $filter: SampleTermFilter) {
    checkpoint(id: $c) {
      termColumns(terms: $terms, subset: $subset, filter: $filter) {
        count subset sampleIds indices labels splits splitCodes correct correctMissing
        columns { term values missing }
      }
    }
  }
`;

const bytes = (b64: string) => Buffer.from(b64, 'base64');
const int32s = (b64: string) => {
  const b = bytes(b64);
  return Array.from({ length: b.length / 4 }, (_, i) => b.readInt32LE(4 * i));
};
const float32s = (b64: string) => {
  const b = bytes(b64);
  return Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(4 * i));
};

async function columns(vars: Record<string, unknown>) {
  const data: any = await t.gql(COLUMNS, vars);
  return data.checkpoint.termColumns;
}

test('every sample in dataset order, with the values rankedSamples gives, and NaN and a count for a term never computed', async () => {
  const c = fx.checkpoints[0]!;
  const cols = await columns({ c: c.id, terms: ['K_NORM', 'LOSS', 'G_NORM', 'A_NORM'] });
  const n = fx.truth.length;
  assert.equal(cols.count, n);
  assert.equal(cols.subset, 'all');
  const byIndex = [...fx.truth].sort((a, b) => a.index - b.index);
  assert.deepEqual(int32s(cols.sampleIds), byIndex.map((s) => s.sampleId));
  assert.deepEqual(int32s(cols.indices), byIndex.map((s) => s.index));
  assert.deepEqual(int32s(cols.labels), byIndex.map((s) => s.label));
  assert.deepEqual(cols.splits, ['train', 'validation']);
  assert.deepEqual([...bytes(cols.splitCodes)].map((k) => cols.splits[k]), byIndex.map((s) => s.split));
  assert.equal(cols.correctMissing, 0);
  assert.deepEqual([...bytes(cols.correct)], byIndex.map((s) => (c.values.get(s.sampleId)!.correct ? 1 : 0)));
  assert.deepEqual(cols.columns.map((col: any) => col.term), ['K_NORM', 'LOSS', 'G_NORM', 'A_NORM']);

  // The same values as rankedSamples at the same checkpoint (float32 either way).
  const ranked: any = await t.gql(`query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 1000) { nodes { sampleId kNorm loss gNorm aNorm correct } } } }`, { c: c.id });
  const nodes = new Map<number, any>(ranked.checkpoint.rankedSamples.nodes.map((r: any) => [Number(r.sampleId), r]));
  assert.equal(nodes.size, n);
  const [kNorm, loss, gNorm, aNorm] = cols.columns.map((col: any) => float32s(col.values));
  byIndex.forEach((s, i) => {
    const r = nodes.get(s.sampleId)!;
    assert.equal(kNorm[i], f32(r.kNorm));
    assert.equal(loss[i], f32(r.loss));
    assert.equal(gNorm[i], f32(r.gNorm));
    assert.equal(kNorm[i], f32(c.values.get(s.sampleId)!.kNorm));
    assert.equal(r.aNorm, null);
  });
  assert.deepEqual(cols.columns.map((col: any) => col.missing), [0, 0, 0, n]);
  // A_NORM was never recorded: NaN for every sample, never 0.
  assert.ok(aNorm.every((v: number) => Number.isNaN(v)));
});

test('a checkpoint where only some samples have values: NaN and the missing count for the others; a filter keeps fewer', async () => {
  const { createCheckpoint } = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
    input: { runId: fx.runId, step: 30, learningRate: 1e-4, weightSpecs: [{ name: 'w', shape: [1], dtype: 'float32' }], weightData: Buffer.alloc(4).toString('base64') },
  });
  const values = fx.checkpoints[0]!.values;
  const has = (sampleId: number) => sampleId % 3 !== 0;
  await recordMetrics(t, createCheckpoint.id, values, has);
  const cols = await columns({ c: createCheckpoint.id, terms: ['LOSS'] });
  const ids = int32s(cols.sampleIds);
  const loss = float32s(cols.columns[0].values);
  const lacking = ids.filter((id) => !has(id)).length;
  assert.ok(lacking > 0 && lacking < ids.length);
  assert.equal(cols.columns[0].missing, lacking);
  assert.equal(cols.correctMissing, lacking);
  ids.forEach((id, i) => {
    if (has(id)) assert.equal(loss[i], f32(values.get(id)!.loss));
    else assert.ok(Number.isNaN(loss[i]), `sample ${id} has no loss: NaN, not ${loss[i]}`);
  });
  assert.ok([...bytes(cols.correct)].every((b, i) => (has(ids[i]!) ? b === 0 || b === 1 : b === 255)));

  // A filter: one class and a loss range keep only the samples that have loss in it, still in dataset order.
  const filtered = await columns({ c: createCheckpoint.id, terms: ['LOSS'], filter: { labels: [1], terms: [{ term: 'LOSS', min: 1 }] } });
  const expected = fx.truth
    .filter((s) => s.label === 1 && has(s.sampleId) && f32(values.get(s.sampleId)!.loss) >= 1)
    .sort((a, b) => a.index - b.index)
    .map((s) => s.sampleId);
  assert.deepEqual(int32s(filtered.sampleIds), expected);
  assert.equal(filtered.columns[0].missing, 0);
});

test('bad input: an unknown term, kCross (no target), no term, an unknown subset; an unknown checkpoint is null', async () => {
  const c = fx.checkpoints[0]!.id;
  const unknownTerm = await t.request(COLUMNS, { c, terms: ['K_NROM'] });
  assert.ok(unknownTerm.errors?.length && !unknownTerm.data);
  assert.deepEqual(codes(unknownTerm), ['BAD_USER_INPUT']);
  assert.deepEqual(codes(await t.request(COLUMNS, { c, terms: ['K_CROSS'] })), ['BAD_USER_INPUT']);
  assert.deepEqual(codes(await t.request(COLUMNS, { c, terms: [] })), ['BAD_USER_INPUT']);
  const subset = await t.request(COLUMNS, { c, terms: ['K_NORM'], subset: 'no-such-subset' });
  assert.deepEqual(codes(subset), ['BAD_USER_INPUT']);
  // An unknown checkpoint is no checkpoint, as everywhere (Query.checkpoint is null).
  const none = await t.request(COLUMNS, { c: '999999', terms: ['LOSS'] });
  assert.deepEqual(none, { data: { checkpoint: null } });
});
