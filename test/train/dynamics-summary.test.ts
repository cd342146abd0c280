import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { pollJob, storeCnn } from '../jobs/helpers.js';
import { assertClose, assertSummary, bruteForceSummary, readRun, SUMMARY_FIELDS, type Summary } from './helpers.js';

/**
 * `Run.dynamicsSummary` of a run a client logged (rows through logMetrics), against values worked
 * out by hand; `trainRun`'s refusals; the summary does not move when unrelated queries compute
 * terms at the run's checkpoints, for a client-logged run and for one Tangent trained.
 */
let t: TestServer;
before(async () => {
  t = await startTestServer({ env: { TANGENT_WORKER: 'off' } });
});
after(() => t?.close());

const b64 = (values: Float32Array | Int32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
const f = Math.fround;

/** 4 samples of length 2, 3 classes: indices 0–2 in train, 3 in test; a BUILTIN model, a run, checkpoints at steps 0, 10, 20, 30. */
async function clientRun(name: string) {
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`, {
    input: {
      name,
      length: 2,
      classNames: ['a', 'b', 'c'],
      samples: [0, 1, 2, 3].map((index) => ({ index, label: index % 3, split: index === 3 ? 'test' : 'train', series: [index, -index] })),
    },
  });
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `${name}-model`, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [1] }, inputLength: 2, numClasses: 3 },
  });
  const { createRun } = await t.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name, modelId: createModel.id, datasetId: createDataset.id, status: 'COMPLETED' },
  });
  const checkpoints: string[] = [];
  for (const step of [0, 10, 20, 30]) {
    const { createCheckpoint } = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: createRun.id, step, weightSpecs: [{ name: 'w', shape: [1], dtype: 'float32' }], weightData: b64(new Float32Array([step])) },
    });
    checkpoints.push(createCheckpoint.id);
  }
  return { datasetId: createDataset.id as string, modelId: createModel.id as string, runId: createRun.id as string, checkpoints };
}

async function log(checkpointId: string, input: Record<string, unknown>) {
  await t.gql(`mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }`, { c: checkpointId, input });
}

async function summary(runId: string, args = ''): Promise<Summary> {
  const { run } = await t.gql(`query($id: ID!) { run(id: $id) { dynamicsSummary${args} { ${SUMMARY_FIELDS} } } }`, { id: runId });
  return run.dynamicsSummary;
}

const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0));
const softmax = (z: number[]) => {
  const e = z.map((v) => Math.exp(v - Math.max(...z)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

test('dynamicsSummary of a client-logged run: hand-computed values, the same as the rows read through the API', async () => {
  const { runId, checkpoints } = await clientRun(`client-${process.pid}`);
  const [A, B, C] = checkpoints as [string, string, string, string];
  // A (step 0): π as probs for samples 0, 1, 3 and as logits only for sample 2.
  await log(A, {
    sampleIndices: [0, 1, 3],
    probs: [0.5, 0.25, 0.25, 0.25, 0.5, 0.25, 0.5, 0.5, 0],
    loss: [0.7, 0.7, 0.7],
    correct: [true, true, false],
    hMinEig: [0.1, -0.001, -1e-7],
  });
  await log(A, { sampleIndices: [2], logits: [0, 0, 0], loss: [1.1], correct: [false] });
  // B (step 10): samples 0, 1 (probs) and 2 (logits); sample 3 has no row.
  await log(B, { sampleIndices: [0, 1], probs: [0.75, 0.125, 0.125, 0.125, 0.75, 0.125], hMinEig: [0.05, 0.2] });
  await log(B, { sampleIndices: [2], logits: [0, 0, 2] });
  // C (step 20): samples 0 and 3 (probs), 2 (logits); sample 1 has no row. D (step 30) has no rows at all.
  await log(C, { sampleIndices: [0, 3], probs: [1, 0, 0, 1, 0, 0], loss: [0.25, 0.05], correct: [true, true] });
  await log(C, { sampleIndices: [2], logits: [3, 0, 0], loss: [3.1], correct: [false] });

  const s = await summary(runId);
  // Analysis points A, B, C (D has no rows); samples 0–3.
  assert.equal(s.analysisPoints, 3);
  assert.equal(s.samplesAnalysed, 4);
  assert.equal(s.finalCheckpoint?.id, C);
  // hMinEig rows: A×3 (0.1, −0.001, −1e-7) and B×2 (0.05, 0.2): −0.001 is below −1e-6, −1e-7 is not.
  assert.equal(s.hPsdPairs, 5);
  assert.equal(s.hPsdRatio, 4 / 5);
  assert.equal(s.hTolerance, 1e-6);
  // Final training rows at C: samples 0 (correct, loss 0.25) and 2 (wrong, loss 3.1).
  assert.equal(s.finalTrainingSamples, 2);
  assert.equal(s.finalTrainingAccuracy, 0.5);
  assertClose(s.finalTrainingLoss, (f(0.25) + f(3.1)) / 2, 'finalTrainingLoss', 1e-12);
  // Complete paths: sample 0 (probs at A, B, C) and sample 2 (softmax of its logits); 1 lacks C, 3 lacks B.
  assert.equal(s.probabilityPathsTracked, 2);
  const path0 = distance([0.75, 0.125, 0.125], [0.5, 0.25, 0.25]) + distance([1, 0, 0], [0.75, 0.125, 0.125]);
  const path2 = distance(softmax([0, 0, 2]), [1 / 3, 1 / 3, 1 / 3]) + distance(softmax([3, 0, 0]), softmax([0, 0, 2]));
  assertClose(s.pathLength, (path0 + path2) / 2, 'pathLength', 1e-12);

  // Other splits and tolerances.
  const test = await summary(runId, '(split: "test", hTolerance: 0)');
  assert.equal(test.finalTrainingSamples, 1);
  assert.equal(test.finalTrainingAccuracy, 1);
  assertClose(test.finalTrainingLoss, f(0.05), 'test loss', 1e-12);
  assert.equal(test.hPsdRatio, 3 / 5); // −1e-7 < −0 now
  assert.equal((await summary(runId, '(hTolerance: 0.01)')).hPsdRatio, 1);
  assert.equal((await summary(runId, '(split: "validation")')).finalTrainingAccuracy, null);

  // The same numbers from the rows as the API returns them, computed the obvious way.
  assertSummary(s, bruteForceSummary(await readRun(t, runId)));
  assertSummary(test, bruteForceSummary(await readRun(t, runId), 'test', 0));

  // A run without rows, and a tolerance that is not one.
  const empty = await clientRun(`empty-${process.pid}`);
  assert.deepEqual(await summary(empty.runId), {
    analysisPoints: 0,
    samplesAnalysed: 0,
    hPsdPairs: 0,
    hPsdRatio: null,
    hTolerance: 1e-6,
    finalTrainingSamples: 0,
    finalTrainingAccuracy: null,
    finalTrainingLoss: null,
    probabilityPathsTracked: 0,
    pathLength: null,
    finalCheckpoint: null,
  });
  const bad = await t.request(`query($id: ID!) { run(id: $id) { dynamicsSummary(hTolerance: -1) { analysisPoints } } }`, { id: runId });
  assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
  assert.equal(bad.errors?.[0]?.extensions?.field, 'hTolerance');
  // A run that clients log has no training.
  const { run } = await t.gql(`query($id: ID!) { run(id: $id) { training { epochs } } }`, { id: runId });
  assert.equal(run.training, null);
});

const TRAIN = `mutation($input: TrainRunInput!) { trainRun(input: $input) { id name status config training {
  optimizer learningRate weightDecay epochs batchSize seed split trainFraction analyzeEvery trackEverySteps sampleCount attempts backend
  trackedSamples { index } fromCheckpoint { id }
  progress { epochsDone epochs stepsDone steps stepsPerEpoch pointsDone points fraction epochLoss epochAccuracy } } } }`;

test('trainRun checks its input before anything is written, and plans the run it queues', async () => {
  const a = await clientRun(`train-a-${process.pid}`);
  const other = await clientRun(`train-b-${process.pid}`);
  const base = { modelId: a.modelId, datasetId: a.datasetId };
  const refused = async (input: Record<string, unknown>, code: string, field?: string) => {
    const res = await t.request(TRAIN, { input: { ...base, ...input } });
    assert.deepEqual(codes(res), [code], JSON.stringify(input));
    if (field) assert.equal(res.errors?.[0]?.extensions?.field, field, JSON.stringify(res.errors));
  };
  const { runs: before } = await t.gql(`{ runs { totalCount } }`);
  await refused({ epochs: 0 }, 'BAD_USER_INPUT', 'input.epochs');
  await refused({ learningRate: 0 }, 'BAD_USER_INPUT', 'input.learningRate');
  await refused({ trainFraction: 1.5 }, 'BAD_USER_INPUT', 'input.trainFraction');
  await refused({ trainFraction: 0 }, 'BAD_USER_INPUT', 'input.trainFraction');
  await refused({ weightDecay: 0.1 }, 'BAD_USER_INPUT', 'input.weightDecay');
  await refused({ split: 'validation' }, 'BAD_USER_INPUT', 'input.split');
  await refused({ fromCheckpointId: other.checkpoints[0] }, 'BAD_USER_INPUT', 'input.fromCheckpointId');
  await refused({ fromCheckpointId: '999999' }, 'NOT_FOUND');
  await refused({ modelId: '999999' }, 'NOT_FOUND');
  await refused({ datasetId: other.datasetId, modelId: a.modelId, name: '' }, 'BAD_USER_INPUT', 'input.name');
  const { runs: afterRefusals } = await t.gql(`{ runs { totalCount } }`);
  assert.equal(afterRefusals.totalCount, before.totalCount);

  // This server works no jobs (TANGENT_WORKER=off): the run waits, planned.
  const { trainRun } = await t.gql(TRAIN, {
    input: { ...base, optimizer: 'ADAMW', epochs: 3, batchSize: 2, seed: 5, trainFraction: 0.5, analyzeEvery: 2, trackEverySteps: 1, trackSamples: 1, fromCheckpointId: a.checkpoints[1] },
  });
  assert.equal(trainRun.status, 'PENDING');
  assert.equal(trainRun.name, `train-train-a-${process.pid}-model`);
  // round(0.5 · 3) = 2 samples, one step per epoch; analysis at epochs 0, 2, 3; tracking every step adds epoch 1.
  assert.deepEqual({ ...trainRun.training, trackedSamples: trainRun.training.trackedSamples.length }, {
    optimizer: 'ADAMW',
    learningRate: 0.001,
    weightDecay: 0.01,
    epochs: 3,
    batchSize: 2,
    seed: 5,
    split: 'train',
    trainFraction: 0.5,
    analyzeEvery: 2,
    trackEverySteps: 1,
    sampleCount: 2,
    attempts: 0,
    backend: null,
    trackedSamples: 1,
    fromCheckpoint: { id: a.checkpoints[1] },
    progress: { epochsDone: 0, epochs: 3, stepsDone: 0, steps: 3, stepsPerEpoch: 1, pointsDone: 0, points: 4, fraction: 0, epochLoss: null, epochAccuracy: null },
  });
  assert.deepEqual(trainRun.config, {
    learningRate: 0.001,
    optimizer: 'adamw',
    epochs: 3,
    batchSize: 2,
    seed: 5,
    extra: { trainedBy: 'tangent', split: 'train', trainFraction: 0.5, analyzeEvery: 2, weightDecay: 0.01, trackEverySteps: 1, trackSamples: 1, fromCheckpointId: Number(a.checkpoints[1]) },
  });
  // The same seed picks the same subsets.
  const again = await t.gql(TRAIN, { input: { ...base, epochs: 3, batchSize: 2, seed: 5, trainFraction: 0.5, trackEverySteps: 1, trackSamples: 1 } });
  assert.deepEqual(again.trainRun.training.trackedSamples, trainRun.training.trackedSamples);
});

/** A data set of 12 series of length 8, 2 classes: 8 in train, 4 in test. */
async function smallDataset(server: TestServer, name: string) {
  const { createDataset } = await server.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id length channels classNames } }`, {
    input: {
      name,
      length: 8,
      classNames: ['a', 'b'],
      samples: Array.from({ length: 12 }, (_, index) => ({
        index,
        label: index % 2,
        split: index < 8 ? 'train' : 'test',
        series: Array.from({ length: 8 }, (_, j) => Math.sin((index % 2 ? 2 : 1) * j + index / 7)),
      })),
    },
  });
  return createDataset as { id: string; length: number; channels: number; classNames: string[] };
}

/** Terms nobody recorded, computed on demand at a checkpoint: a ranking of the test split and statistics over every sample. */
async function unrelatedQueries(server: TestServer, checkpointId: string) {
  await server.gql(`query($id: ID!) { checkpoint(id: $id) {
    rankedSamples(first: 10, filter: { splits: ["test"] }, orderBy: { term: K_NORM, direction: DESC }) { totalCount }
    termStats(term: H_MIN_EIG) { mean } } }`, { id: checkpointId });
}

const rowCount = async (server: TestServer, checkpointId: string) =>
  (await server.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1) { totalCount } } }`, { id: checkpointId })).checkpoint.metrics.totalCount as number;

test('dynamicsSummary of a client-logged run covers what the client recorded: terms computed on demand later leave it as it was', async () => {
  const ds = await smallDataset(t, `client-stable-${process.pid}`);
  const cnn = await storeCnn(t, ds, { config: { filters: [2], kernelSizes: [3], pool: 0, dropout: 0, seed: 1 }, checkpoints: 2 });
  const [A, B] = cnn.checkpoints.map((c) => c.id) as [string, string];
  // The client records loss, correct and π of train samples 0–2 at both checkpoints, hMinEig of sample 0 at A.
  await log(A, { sampleIndices: [0, 1, 2], probs: [0.5, 0.5, 0.25, 0.75, 0.75, 0.25], loss: [0.7, 0.3, 1.4], correct: [true, true, false] });
  await log(A, { sampleIndices: [0], hMinEig: [0] });
  await log(B, { sampleIndices: [0, 1, 2], probs: [0.75, 0.25, 0.5, 0.5, 0.5, 0.5], loss: [0.3, 0.7, 0.7], correct: [true, false, false] });
  const before = await summary(cnn.runId);
  const args = '(split: "test", hTolerance: 0.5)';
  const beforeTest = await summary(cnn.runId, args);
  assert.equal(before.analysisPoints, 2);
  assert.equal(before.samplesAnalysed, 3);
  assert.equal(before.hPsdPairs, 1);
  assert.equal(before.probabilityPathsTracked, 3);
  assert.equal(before.finalTrainingSamples, 3);
  assert.equal(beforeTest.finalTrainingSamples, 0);

  // Tangent computes every term of every sample at both checkpoints (hMinEig of the client's rows included).
  for (const c of [A, B]) await unrelatedQueries(t, c);
  assert.equal(await rowCount(t, A), 12, 'the queries computed rows for every sample');
  assert.deepEqual(await summary(cnn.runId), before);
  assert.deepEqual(await summary(cnn.runId, args), beforeTest);
  // The same numbers from the values whose provenance is the client, read through the API.
  const clientOnly = (await readRun(t, cnn.runId)).map((c) => ({
    ...c,
    metrics: c.metrics
      .filter((r) => r.provenance.some((p) => p.producer.kind === 'CLIENT'))
      .map((r) => {
        const client = (term: string) => r.provenance.some((p) => p.term === term && p.producer.kind === 'CLIENT');
        return { ...r, loss: client('LOSS') ? r.loss : null, correct: client('CORRECT') ? r.correct : null, probs: client('PROBS') ? r.probs : null, logits: client('LOGITS') ? r.logits : null, hMinEig: client('H_MIN_EIG') ? r.hMinEig : null };
      }),
  }));
  assertSummary(before, bruteForceSummary(clientOnly));
  // Over every stored value instead, the H-PSD pairs would have grown with the queries.
  assert.ok(bruteForceSummary(await readRun(t, cnn.runId)).hPsdPairs > before.hPsdPairs);
});

test('dynamicsSummary of a Tangent-trained run covers its training: rankings, statistics and jobs over other samples leave it as it was', async () => {
  const w = await startTestServer();
  try {
    const ds = await smallDataset(w, `trained-stable-${process.pid}`);
    const { createModel } = await w.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
      input: { name: `tiny-${process.pid}`, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [3], pool: 0, dropout: 0 }, inputLength: 8, numClasses: 2 },
    });
    // 6 of the 8 train samples, 2 steps per epoch; analysis at epochs 0, 1, 2; 2 tracked samples at every step.
    const { trainRun } = await w.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
      input: { modelId: createModel.id, datasetId: ds.id, epochs: 2, batchSize: 3, seed: 4, learningRate: 0.05, trainFraction: 0.75, analyzeEvery: 1, trackEverySteps: 1, trackSamples: 2 },
    });
    let status = 'PENDING';
    while (status === 'PENDING' || status === 'RUNNING') {
      await new Promise((r) => setTimeout(r, 200));
      status = (await w.gql(`query($id: ID!) { run(id: $id) { status } }`, { id: trainRun.id })).run.status;
    }
    assert.equal(status, 'COMPLETED');
    const read = async (args = '') => (await w.gql(`query($id: ID!) { run(id: $id) { dynamicsSummary${args} { ${SUMMARY_FIELDS} } } }`, { id: trainRun.id })).run.dynamicsSummary as Summary;
    const before = await read();
    const beforeTest = await read('(split: "test")');
    // Steps 0–4: analysis at 0, 2, 4 (6 samples), tracking at 1, 3 (2 samples).
    assert.equal(before.analysisPoints, 5);
    assert.equal(before.samplesAnalysed, 6);
    assert.equal(before.hPsdPairs, 3 * 6 + 2 * 2);
    assert.equal(before.probabilityPathsTracked, 2);
    assert.equal(before.finalTrainingSamples, 6);
    assert.equal(beforeTest.finalTrainingSamples, 0);
    assertSummary(before, bruteForceSummary(await readRun(w, trainRun.id)));

    // A client's values for a sample the training did not use, at a training checkpoint.
    const checkpoints = (await readRun(w, trainRun.id)).map((c) => c.id);
    await w.gql(`mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }`, {
      c: checkpoints[0],
      input: { sampleIndices: [11], loss: [9], correct: [false], hMinEig: [-1] },
    });
    // Unrelated compute: a ranking of the test split and statistics at every checkpoint, then a job over every sample at the last.
    for (const c of checkpoints) await unrelatedQueries(w, c);
    const last = checkpoints.at(-1)!;
    const { computeTerms: job } = await w.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, { input: { checkpointId: last } });
    assert.equal((await pollJob(w, job.id)).status, 'COMPLETED');
    assert.equal(await rowCount(w, last), 12, 'rows for every sample now');
    assert.deepEqual(await read(), before);
    assert.deepEqual(await read('(split: "test")'), beforeTest);
    // Over every stored row, the old definition, the pairs would have grown.
    assert.ok(bruteForceSummary(await readRun(w, trainRun.id)).hPsdPairs > before.hPsdPairs);
  } finally {
    await w.close();
  }
});
