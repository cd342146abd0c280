import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { layerHashesOf } from '../../src/modules/checkpoints/service.js';
import { readWeights } from '../../src/modules/checkpoints/weight-storage.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Checkpoints Tangent trains itself keep their per-layer hashes at write, like created and imported
 * ones: in HEAD fine-tuning every layer but head_norm and head hashes the same at every checkpoint,
 * so kernel terms over the head at the later checkpoints read the trunk activations the first one
 * stored.
 */
let t: TestServer;
before(async () => {
  t = await startTestServer({ env: { TANGENT_COMPUTE_THREADS: '1' } });
});
after(() => t?.close());

test('trained checkpoints keep layer hashes; HEAD mode shares the trunk, so its later checkpoints hit the cache', { timeout: 240_000 }, async () => {
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 20) { nodes { id split } } } }`, {
    input: {
      name: `trunk-train-${process.pid}`,
      length: 16,
      channels: 1,
      classNames: ['a', 'b'],
      samples: Array.from({ length: 8 }, (_, index) => ({ index, label: index % 2, split: 'train', series: Array.from({ length: 16 }, (_, j) => Math.sin((index % 2 ? 2 : 1) * j + index / 5)) })),
    },
  });
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: {
      name: `trunk-mantis-${process.pid}`,
      format: 'BUILTIN',
      architecture: 'mantis',
      config: { patches: 4, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 8, scalarDim: 4, scalarScales: [0.1, 1, 10], dropout: 0, seed: 2 },
      inputLength: 16,
      channels: 1,
      numClasses: 2,
    },
  });
  const { trainRun } = await t.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: { modelId: createModel.id, datasetId: createDataset.id, fineTuning: 'HEAD', epochs: 2, batchSize: 4, seed: 3, learningRate: 0.05 },
  });
  let run: any;
  do {
    await new Promise((r) => setTimeout(r, 200));
    run = (await t.gql(`query($id: ID!) { run(id: $id) { status training { error } checkpoints(first: 10) { nodes { id step } } } }`, { id: trainRun.id })).run;
  } while (run.status === 'PENDING' || run.status === 'RUNNING');
  assert.equal(run.status, 'COMPLETED', run.training.error);
  const checkpoints = run.checkpoints.nodes as { id: string }[];
  assert.ok(checkpoints.length >= 2);

  const hashes: Record<string, string>[] = [];
  for (const c of checkpoints) {
    const row = await readWeights(t.db.sql, Number(c.id));
    assert.ok(row?.layerHashes, `checkpoint ${c.id} was stored with its layer hashes`);
    assert.deepEqual(row.layerHashes, layerHashesOf(row.specs, row.data));
    hashes.push(row.layerHashes);
  }
  const first = hashes[0]!;
  const last = hashes.at(-1)!;
  const moved = Object.keys(first).filter((layer) => first[layer] !== last[layer]).sort();
  assert.deepEqual(moved, ['head', 'head_norm'], 'HEAD fine-tuning changes the head and nothing else');

  const ids = (createDataset.samples.nodes as { id: string }[]).map((s) => s.id);
  const stats = async () => (await t.gql(`{ serverInfo { compute { trunkCache { hits misses } } } }`)).serverInfo.compute.trunkCache;
  const query = `query($c: ID!, $ids: [ID!]!) { checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: [K_NORM], subset: "head") { kNorm } } }`;
  const s0 = await stats();
  await t.gql(query, { c: checkpoints[0]!.id, ids });
  const s1 = await stats();
  assert.equal(s1.misses - s0.misses, ids.length);
  await t.gql(query, { c: checkpoints.at(-1)!.id, ids });
  const s2 = await stats();
  assert.equal(s2.hits - s1.hits, ids.length, 'the last checkpoint reads the trunk the first one stored');
  assert.equal(s2.misses, s1.misses);
});
