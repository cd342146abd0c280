import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `trainRun`'s fine-tuning modes on a tiny Mantis (2 channels, a channel adapter): HEAD moves
 * exactly head_norm and head, ADAPTER_HEAD the adapter too, FULL the encoder as well; every other
 * weight is byte-identical at the last checkpoint to the first. HEAD's analysis terms (from the
 * frozen trunk computed once) equal a fresh forward pass from the stored weights. Tracked samples by
 * id; refusals.
 */
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t?.close());

/** 12 series of length 16 with 2 channels, 2 classes: 8 in train, 4 in test. */
async function dataset() {
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 20) { nodes { id split } } } }`, {
    input: {
      name: `ft-${process.pid}`,
      length: 16,
      channels: 2,
      classNames: ['a', 'b'],
      samples: Array.from({ length: 12 }, (_, index) => ({
        index,
        label: index % 2,
        split: index < 8 ? 'train' : 'test',
        // channel-major or sample-major does not matter here: any 32 values
        series: Array.from({ length: 32 }, (_, j) => Math.sin((index % 2 ? 2 : 1) * (j % 16) + index / 5 + (j >= 16 ? 1 : 0))),
      })),
    },
  });
  return { id: createDataset.id as string, samples: createDataset.samples.nodes as { id: string; split: string }[] };
}

const TINY_MANTIS = { patches: 4, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 8, scalarDim: 4, scalarScales: [0.1, 1, 10], adapterChannels: 1, dropout: 0.1, seed: 2 };

async function model(kind: 'mantis' | 'cnn1d') {
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input:
      kind === 'mantis'
        ? { name: `ft-mantis-${process.pid}`, format: 'BUILTIN', architecture: 'mantis', config: TINY_MANTIS, inputLength: 16, channels: 2, numClasses: 2 }
        : { name: `ft-cnn-${process.pid}`, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [3], pool: 0 }, inputLength: 16, channels: 2, numClasses: 2 },
  });
  return createModel.id as string;
}

/** Each weight's bytes by name ('layer/weight'), at a checkpoint. */
async function weights(checkpointId: string): Promise<Map<string, Buffer>> {
  const { checkpoint } = await t.gql(`query($id: ID!) { checkpoint(id: $id) { weights { specs data } } }`, { id: checkpointId });
  const data = Buffer.from(checkpoint.weights.data, 'base64');
  const out = new Map<string, Buffer>();
  let at = 0;
  for (const spec of checkpoint.weights.specs as { name: string; shape: number[] }[]) {
    const bytes = 4 * spec.shape.reduce((a, d) => a * d, 1);
    out.set(spec.name, data.subarray(at, at + bytes));
    at += bytes;
  }
  assert.equal(at, data.length);
  return out;
}

const TRAIN = `mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`;

async function train(modelId: string, datasetId: string, fineTuning: string, trackSampleIds: string[]) {
  const { trainRun } = await t.gql(TRAIN, { input: { modelId, datasetId, fineTuning, epochs: 2, batchSize: 4, seed: 3, learningRate: 0.05, trackSampleIds } });
  let run: any;
  do {
    await new Promise((r) => setTimeout(r, 200));
    run = (
      await t.gql(`query($id: ID!) { run(id: $id) { status training { error fineTuning trackedSamples { id } } checkpoints(first: 100) { nodes { id step } } } }`, { id: trainRun.id })
    ).run;
  } while (run.status === 'PENDING' || run.status === 'RUNNING');
  assert.equal(run.status, 'COMPLETED', run.training.error);
  assert.equal(run.training.fineTuning, fineTuning);
  assert.deepEqual(run.training.trackedSamples.map((s: { id: string }) => s.id), trackSampleIds);
  const checkpoints = run.checkpoints.nodes as { id: string; step: number }[];
  assert.deepEqual(checkpoints.map((c) => c.step), [0, 2, 4]);
  const first = await weights(checkpoints[0]!.id);
  const last = await weights(checkpoints.at(-1)!.id);
  const changed = new Set([...first.keys()].filter((name) => !first.get(name)!.equals(last.get(name)!)).map((name) => name.split('/')[0]!));
  return { runId: trainRun.id as string, checkpoints, changed, names: new Set([...first.keys()].map((n) => n.split('/')[0]!)) };
}

test('fine-tuning modes freeze exactly what they freeze: weights compared across checkpoints', { timeout: 240_000 }, async () => {
  const ds = await dataset();
  const mantis = await model('mantis');
  const tracked = ds.samples.filter((s) => s.split === 'train').slice(1, 3).map((s) => s.id);

  const head = await train(mantis, ds.id, 'HEAD', tracked);
  assert.deepEqual([...head.changed].sort(), ['head', 'head_norm']);
  const adapter = await train(mantis, ds.id, 'ADAPTER_HEAD', tracked);
  assert.deepEqual([...adapter.changed].sort(), ['adapter', 'head', 'head_norm']);
  const full = await train(mantis, ds.id, 'FULL', tracked);
  // Every layer with weights moves (the encoder's included).
  for (const layer of ['adapter', 'conv_diff', 'conv_series', 'token_proj', 'block0_qkv', 'block0_mlp1', 'cls', 'head_norm', 'head']) {
    assert.ok(full.changed.has(layer), `FULL moved ${layer} (moved: ${[...full.changed].join(', ')})`);
  }
  assert.ok(full.names.size > 10);

  // HEAD's point terms come from the trunk computed once; the same π as a forward pass from the stored weights.
  const lastCheckpoint = head.checkpoints.at(-1)!.id;
  for (const sampleId of tracked) {
    const { checkpoint } = await t.gql(
      `query($c: ID!, $s: ID!) { checkpoint(id: $c) { sampleTerms(sampleIds: [$s], terms: [PROBS]) { probs } firstOrder(observedId: $s, updatedId: $s) { logProbs } } }`,
      { c: lastCheckpoint, s: sampleId },
    );
    const stored = checkpoint.sampleTerms[0].probs as number[];
    const fresh = (checkpoint.firstOrder.logProbs as number[]).map(Math.exp);
    stored.forEach((p, c) => assert.ok(Math.abs(p - fresh[c]!) < 1e-5, `π ${c} of sample ${sampleId}: stored ${p}, recomputed ${fresh[c]}`));
  }
  // The tracked samples are the probability paths' default.
  const { run } = await t.gql(`query($id: ID!) { run(id: $id) { probabilityPaths { sampleIds steps } } }`, { id: head.runId });
  assert.deepEqual(run.probabilityPaths.sampleIds, tracked);
  assert.deepEqual(run.probabilityPaths.steps, [0, 2, 4]);
});

test('trainRun refuses ADAPTER_HEAD for a model that is not Mantis, and tracked ids it does not train on', async () => {
  const ds = await dataset();
  const cnn = await model('cnn1d');
  const { runs: before } = await t.gql(`{ runs { totalCount } }`);
  const adapter = await t.request(TRAIN, { input: { modelId: cnn, datasetId: ds.id, fineTuning: 'ADAPTER_HEAD' } });
  assert.deepEqual(codes(adapter), ['BAD_USER_INPUT']);
  assert.equal(adapter.errors?.[0]?.extensions?.field, 'input.fineTuning');
  const testSample = ds.samples.find((s) => s.split === 'test')!.id;
  const stray = await t.request(TRAIN, { input: { modelId: cnn, datasetId: ds.id, trackSampleIds: [testSample] } });
  assert.deepEqual(codes(stray), ['BAD_USER_INPUT']);
  assert.equal(stray.errors?.[0]?.extensions?.field, 'input.trackSampleIds');
  const { runs: afterRefusals } = await t.gql(`{ runs { totalCount } }`);
  assert.equal(afterRefusals.totalCount, before.totalCount);
});
