import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cnn1d, initBackend, mantis, serializeModel } from '../../src/compute/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { importUcr, SMALL_CNN } from '../jobs/helpers.js';

/**
 * Checkpoints that differ in a few layers share a loaded model: the compute service writes the
 * layers that changed into an idle model of the same stored model (a swap) instead of loading a new
 * one, and a checkpoint that differs in most of its bytes is loaded anew. A swapped model computes the
 * same bits as one loaded anew, in both directions, on the full model (subset "all").
 */
const TINY_MANTIS = { patches: 5, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 12, scalarDim: 4, scalarScales: [0.01, 1, 100], dropout: 0, seed: 5 };
const TERMS = ['LOSS', 'LOGITS', 'PROBS', 'A_NORM', 'H_TRACE', 'G_NORM', 'K_NORM', 'K_TRACE'];
const SAMPLE_TERMS = /* GraphQL */ `
  query($c: ID!, $ids: [ID!]!, $terms: [Term!]!) {
    checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: $terms) { loss logits probs aNorm hTrace gNorm kNorm kTrace } }
  }
`;
const STATS = `{ serverInfo { compute { modelLoads modelSwaps } } }`;

let t: TestServer;
let ds: Awaited<ReturnType<typeof importUcr>>;
before(async () => {
  t = await startTestServer({ env: { TANGENT_COMPUTE_THREADS: '2', TANGENT_INLINE_MAX_SAMPLES: '100' } });
  ds = await importUcr(t, 'GunPoint');
});
after(() => t?.close());

/**
 * Checkpoints of one model: seeded weights (0), the last layer changed (1), every weight changed (2);
 * with `heads`, that many checkpoints whose last layers alone differ.
 */
async function storeCheckpoints(arch: 'mantis' | 'cnn1d', heads = 0): Promise<string[]> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const shape = { length: ds.dataset.length, channels: ds.dataset.channels, classes: ds.dataset.classNames.length };
  const config = arch === 'mantis' ? TINY_MANTIS : SMALL_CNN;
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `${arch}-${suffix}`, format: 'BUILTIN', architecture: arch, config, inputLength: shape.length, channels: shape.channels, numClasses: shape.classes },
  });
  const { createRun } = await t.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: `run-${suffix}`, modelId: createModel.id, datasetId: ds.dataset.id },
  });
  await initBackend('auto', () => undefined);
  const stored = await serializeModel(arch === 'mantis' ? mantis({ ...TINY_MANTIS, ...shape }) : cnn1d({ ...SMALL_CNN, ...shape }));
  const specs = stored.weightSpecs;
  const w0 = new Float32Array(stored.weightData.slice(0));
  const w1 = w0.slice();
  const lastLayer = specs.at(-1)!.name.slice(0, specs.at(-1)!.name.lastIndexOf('/'));
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.name.startsWith(`${lastLayer}/`)) for (let i = offset; i < offset + size; i++) w1[i] = w0[i]! * 1.25 + 0.01;
    offset += size;
  }
  const w2 = w0.map((v) => v * 0.9 - 0.001);
  const scaled = (k: number) => {
    const w = w0.slice();
    let at = 0;
    for (const spec of specs) {
      const size = spec.shape.reduce((a, b) => a * b, 1);
      if (spec.name.startsWith(`${lastLayer}/`)) for (let i = at; i < at + size; i++) w[i] = w0[i]! * (1 + 0.1 * k);
      at += size;
    }
    return w;
  };
  const ids: string[] = [];
  for (const [k, w] of (heads > 0 ? Array.from({ length: heads }, (_, k) => scaled(k)) : [w0, w1, w2]).entries()) {
    const res = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: createRun.id, step: k, weightSpecs: specs, weightData: Buffer.from(w.buffer).toString('base64') },
    });
    ids.push(res.createCheckpoint.id);
  }
  return ids;
}

const stats = async () => (await t.gql(STATS)).serverInfo.compute as { modelLoads: number; modelSwaps: number };
const terms = async (checkpoint: string, from: number, to: number) =>
  (await t.gql(SAMPLE_TERMS, { c: checkpoint, ids: ds.samples.slice(from, to).map((s) => s.id), terms: TERMS })).checkpoint.sampleTerms;
/** Forgets the terms computed at a checkpoint, so the next request computes them again. */
const forget = (checkpoint: string) => t.db.sql.query('DELETE FROM sample_metric WHERE checkpoint_id = $1', [Number(checkpoint)]);

describe('checkpoints that differ in a few layers share a loaded model', () => {
  for (const arch of ['mantis', 'cnn1d'] as const) {
    test(`${arch}: a swapped model computes the bits a model loaded anew does, both ways; most bytes changed loads anew`, async () => {
      const [c0, c1, c2] = await storeCheckpoints(arch);
      const s0 = await stats();
      // Checkpoint 1 first, loaded anew (no model of this stored model is loaded yet).
      const fresh1 = await terms(c1!, 0, 6);
      const s1 = await stats();
      assert.deepEqual([s1.modelLoads - s0.modelLoads, s1.modelSwaps - s0.modelSwaps], [1, 0]);
      await forget(c1!);

      // Checkpoint 0 differs in the last layer only: written into checkpoint 1's idle model, and back.
      const swapped0 = await terms(c0!, 0, 6);
      const swapped1 = await terms(c1!, 0, 6);
      const s2 = await stats();
      assert.deepEqual([s2.modelLoads - s1.modelLoads, s2.modelSwaps - s1.modelSwaps], [2, 2]);
      assert.deepEqual(swapped1, fresh1, 'checkpoint 1 after two swaps: the same bits as loaded anew');
      assert.notDeepEqual(swapped0, swapped1, 'the last layer changed, so the terms did');

      // Checkpoint 2 differs from the idle model in every byte: loaded anew.
      const all2 = await terms(c2!, 0, 6);
      const s3 = await stats();
      assert.deepEqual([s3.modelLoads - s2.modelLoads, s3.modelSwaps - s2.modelSwaps], [1, 0], 'every weight changed: loaded anew');
      assert.notDeepEqual(all2, swapped1);
    });
  }

  test('a burst over four checkpoints that differ in the head takes turns on one model', async () => {
    const checkpoints = await storeCheckpoints('mantis', 4);
    const s0 = await stats();
    const fields = checkpoints.map((c, i) => `c${i}: checkpoint(id: "${c}") { sampleTerms(sampleIds: $ids, terms: [K_NORM]) { kNorm } }`);
    const data = await t.gql(`query($ids: [ID!]!) { ${fields.join('\n')} }`, { ids: ds.samples.slice(0, 4).map((s) => s.id) });
    const s1 = await stats();
    assert.equal(s1.modelLoads - s0.modelLoads, 4);
    // One model loaded, the others written into it in turn (a miss waits up to 5 s for it: on a very
    // slow machine one may load a model of its own instead).
    assert.ok(s1.modelSwaps - s0.modelSwaps >= 1, `${s1.modelSwaps - s0.modelSwaps} swaps`);
    const kNorms = checkpoints.map((_, i) => data[`c${i}`].sampleTerms.map((r: { kNorm: number }) => r.kNorm));
    assert.equal(new Set(kNorms.map((k) => k.join())).size, 4, 'each checkpoint its own terms');
  });
});
