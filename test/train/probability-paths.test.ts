import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { pollJob } from '../jobs/helpers.js';
import { assertClose, readRun } from './helpers.js';

/**
 * `Run.probabilityPaths` of a run Tangent trained: the tracked samples by default, π at every
 * checkpoint equal to the stored per-checkpoint metrics (JSON and base64 alike); samples the
 * training never analysed computed on demand, inline up to the request's allowance and past it as
 * jobs (TERMS_PENDING naming them, or waited for with waitMs); bad input refused.
 */
let t: TestServer;
before(async () => {
  // Inline allowance of 4 samples per request: 5 checkpoints × 1 new sample overflows it by one.
  t = await startTestServer({ env: { TANGENT_INLINE_MAX_SAMPLES: '4' } });
});
after(() => t?.close());

const PATHS = `checkpointIds steps epochs sampleIds labels classes probs probsBase64 computed`;

interface Paths {
  checkpointIds: string[];
  steps: number[];
  epochs: (number | null)[];
  sampleIds: string[];
  labels: number[];
  classes: number;
  probs: number[];
  probsBase64: string;
  computed: number;
}

async function paths(runId: string, args = '', variables: Record<string, unknown> = {}): Promise<Paths> {
  const { run } = await t.gql(`query($id: ID!${args ? ', $ids: [ID!], $wait: Int' : ''}) { run(id: $id) { probabilityPaths${args} { ${PATHS} } } }`, { id: runId, ...variables });
  return run.probabilityPaths;
}

/** 12 series of length 8, 2 classes: 8 in train, 4 in test; a tiny cnn1d trained on 6 of the 8 with 2 tracked samples at every step. */
async function trainedRun() {
  const { createDataset: ds } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 20) { nodes { id index label split } } } }`, {
    input: {
      name: `paths-${process.pid}`,
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
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `paths-tiny-${process.pid}`, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [3], pool: 0, dropout: 0 }, inputLength: 8, numClasses: 2 },
  });
  const { trainRun } = await t.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: { modelId: createModel.id, datasetId: ds.id, epochs: 2, batchSize: 3, seed: 4, learningRate: 0.05, trainFraction: 0.75, analyzeEvery: 1, trackEverySteps: 1, trackSamples: 2 },
  });
  let run: any;
  do {
    await new Promise((r) => setTimeout(r, 200));
    run = (await t.gql(`query($id: ID!) { run(id: $id) { status training { trackedSamples { id } } } }`, { id: trainRun.id })).run;
  } while (run.status === 'PENDING' || run.status === 'RUNNING');
  assert.equal(run.status, 'COMPLETED');
  const samples = ds.samples.nodes as { id: string; index: number; label: number; split: string }[];
  return { runId: trainRun.id as string, tracked: run.training.trackedSamples.map((s: { id: string }) => s.id) as string[], samples };
}

/** Every value of `p` equals the stored probs of its (checkpoint, sample), read through Checkpoint.metrics. */
async function assertStored(runId: string, p: Paths) {
  const stored = await readRun(t, runId);
  assert.deepEqual(p.checkpointIds, stored.map((c) => c.id));
  assert.deepEqual(p.steps, stored.map((c) => c.step));
  assert.deepEqual(p.epochs, stored.map((c) => c.epoch));
  const P = stored.length;
  const V = p.classes;
  assert.equal(p.probs.length, p.sampleIds.length * P * V);
  p.sampleIds.forEach((sampleId, s) => {
    stored.forEach((c, k) => {
      const row = c.metrics.find((m) => m.sample.id === sampleId);
      assert.ok(row?.probs, `sample ${sampleId} has probs stored at step ${c.step}`);
      assert.deepEqual(p.probs.slice((s * P + k) * V, (s * P + k + 1) * V), row.probs, `π of sample ${sampleId} at step ${c.step}`);
    });
  });
  const bytes = Buffer.from(p.probsBase64, 'base64');
  assert.deepEqual(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)), p.probs.map(Math.fround));
}

let run: Awaited<ReturnType<typeof trainedRun>>;

test('probabilityPaths of a trained run: the tracked samples at every checkpoint, equal to the stored metrics, in one request', async () => {
  run = await trainedRun();
  const p = await paths(run.runId);
  // Steps 0–4 (analysis at 0, 2, 4; tracking at 1, 3), the 2 tracked samples, 2 classes; all stored.
  assert.deepEqual(p.steps, [0, 1, 2, 3, 4]);
  assert.deepEqual([...p.sampleIds].sort(), [...run.tracked].sort());
  assert.deepEqual(p.labels, p.sampleIds.map((id) => run.samples.find((s) => s.id === id)!.label));
  assert.equal(p.classes, 2);
  assert.equal(p.computed, 0);
  await assertStored(run.runId, p);
  // The summary's path length is the mean over these paths of Σ‖π_t − π_{t−1}‖₂.
  const { run: r } = await t.gql(`query($id: ID!) { run(id: $id) { dynamicsSummary { probabilityPathsTracked pathLength } } }`, { id: run.runId });
  assert.equal(r.dynamicsSummary.probabilityPathsTracked, 2);
  const P = p.steps.length;
  let total = 0;
  for (let s = 0; s < 2; s++) {
    for (let k = 1; k < P; k++) {
      const at = (kk: number, c: number) => Math.fround(p.probs[(s * P + kk) * 2 + c]!); // the summary reads real as float8
      total += Math.hypot(at(k, 0) - at(k - 1, 0), at(k, 1) - at(k - 1, 1));
    }
  }
  assertClose(r.dynamicsSummary.pathLength, total / 2, 'pathLength', 1e-12);
});

test('probabilityPaths computes π where it is missing: inline within the allowance, past it a job (TERMS_PENDING, or waited for)', async () => {
  const [a, b] = run.samples.filter((s) => s.split === 'test');
  const args = '(sampleIds: $ids, waitMs: $wait)';
  // Test sample a at 5 checkpoints: 4 inline, the fifth over the allowance goes to a job.
  const res = await t.request(`query($id: ID!, $ids: [ID!]) { run(id: $id) { probabilityPaths(sampleIds: $ids) { computed } } }`, { id: run.runId, ids: [a!.id, run.tracked[0]] });
  assert.deepEqual(codes(res), ['TERMS_PENDING']);
  const ext = res.errors![0]!.extensions!;
  assert.equal(ext.jobIds.length, 1);
  assert.equal(ext.jobId, ext.jobIds[0]);
  assert.equal(ext.pending, 1);
  assert.equal((await pollJob(t, ext.jobId)).status, 'COMPLETED');
  const again = await paths(run.runId, args, { ids: [a!.id, run.tracked[0]] });
  assert.equal(again.computed, 0, 'the inline four and the job stored them all');
  assert.deepEqual(again.sampleIds, [a!.id, run.tracked[0]]);
  await assertStored(run.runId, again);

  // Test sample b, waiting for the job: the answer comes in the same request.
  const waited = await paths(run.runId, args, { ids: [b!.id, b!.id], wait: 60_000 });
  assert.equal(waited.computed, 5);
  assert.deepEqual(waited.sampleIds, [b!.id]);
  await assertStored(run.runId, waited);
});

test('probabilityPaths refuses samples of another dataset and a negative waitMs; a run without tracked samples has empty paths', async () => {
  const { createDataset: other } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 1) { nodes { id } } } }`, {
    input: { name: `paths-other-${process.pid}`, length: 8, classNames: ['a', 'b'], samples: [{ index: 0, label: 0, split: 'train', series: [1, 2, 3, 4, 5, 6, 7, 8] }] },
  });
  const q = `query($id: ID!, $ids: [ID!], $wait: Int) { run(id: $id) { probabilityPaths(sampleIds: $ids, waitMs: $wait) { computed } } }`;
  const bad = await t.request(q, { id: run.runId, ids: [other.samples.nodes[0].id] });
  assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
  assert.equal(bad.errors?.[0]?.extensions?.field, 'sampleIds');
  const wait = await t.request(q, { id: run.runId, ids: [run.tracked[0]], wait: -1 });
  assert.deepEqual(codes(wait), ['BAD_USER_INPUT']);
  assert.equal(wait.errors?.[0]?.extensions?.field, 'waitMs');

  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `paths-client-${process.pid}`, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [3], pool: 0 }, inputLength: 8, numClasses: 2 },
  });
  const { createRun } = await t.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, { input: { name: 'client', modelId: createModel.id, datasetId: other.id } });
  const empty = await paths(createRun.id);
  assert.deepEqual({ ...empty, probsBase64: empty.probsBase64 }, { checkpointIds: [], steps: [], epochs: [], sampleIds: [], labels: [], classes: 2, probs: [], probsBase64: '', computed: 0 });
});
