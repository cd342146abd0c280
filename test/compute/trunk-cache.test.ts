/**
 * Frozen-trunk reuse in the engine: terms over a subset computed from the trunk's features are the
 * same bits as from the series (selfKernel, computeTerms, crossKernel, logits), on cnn1d, the
 * transformer, a small Mantis and a model with a residual around its subset; with another
 * checkpoint's head over the same trunk too; and the split is where the subset's dependence starts.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { computeTerms, crossKernel, loadWeights, logitsFromTrunk, logitsOf, mantis, prepareModel, selfKernel, serializeModel, trunkFeatures, trunkSplit } from '../../src/compute/index.js';
import type { EngineModel, Subset } from '../../src/compute/index.js';
import { makePlan } from '../../src/compute/plan.js';
import { BACKENDS, skipReason, mixedModel, noLeak, realSeries, tinyCnn, tinyTransformer, useBackend } from './helpers.js';

const SMALL_MANTIS = { length: 32, channels: 2, classes: 3, patches: 4, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 12, scalarDim: 4, scalarScales: [0.01, 1, 100] };

/**
 * The same bits on cpu and wasm. On webgpu the kernels tile by shape, so a chunk of 3 and one of 7
 * round differently: there the values agree to float32 precision (relative 1e-5 of the largest), and the
 * server keys stored features by backend for that reason.
 */
function sameValues(backend: string, a: Float32Array | undefined, b: Float32Array | undefined, what: string): void {
  assert.ok(a !== undefined && b !== undefined, `${what}: missing`);
  assert.equal(a.length, b.length, `${what}: length`);
  if (backend !== 'webgpu') {
    assert.deepEqual(new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length), `${what}: not the same bits`);
    return;
  }
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) <= 1e-5 * Math.max(scale, 1e-30), `${what}[${i}]: ${a[i]} against ${b[i]}`);
}

/** The head's weights of `m` replaced by other random values (the trunk untouched), as a later head-mode checkpoint. */
async function retrainHead(m: EngineModel, layers: readonly string[], seed: number): Promise<void> {
  const stored = await serializeModel(m.model);
  const data = new Float32Array(stored.weightData.slice(0));
  let offset = 0;
  let s = seed;
  for (const spec of stored.weightSpecs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const layer = spec.name.slice(0, spec.name.lastIndexOf('/'));
    if (layers.includes(layer) && !spec.name.endsWith('moving_variance')) {
      for (let i = 0; i < size; i++) data[offset + i] = (data[offset + i] as number) + 0.05 * Math.sin(++s);
    }
    offset += size;
  }
  loadWeights(m, { weightSpecs: stored.weightSpecs, weightData: data.buffer });
}

const CASES: Array<{ name: string; make: () => tf.LayersModel; length: number; channels: number; subset: Subset }> = [
  { name: 'cnn1d head', make: () => tinyCnn(), length: 24, channels: 2, subset: 'head' },
  { name: 'transformer head', make: () => tinyTransformer(), length: 24, channels: 2, subset: 'head' },
  { name: 'mantis head', make: () => mantis(SMALL_MANTIS), length: 32, channels: 2, subset: 'head' },
  { name: 'mantis adapter_head', make: () => mantis({ ...SMALL_MANTIS, adapterChannels: 1 }), length: 32, channels: 2, subset: 'adapter_head' },
  { name: 'residual around the subset', make: () => mixedModel(), length: 12, channels: 2, subset: ['c2', 'head'] },
];

for (const backend of BACKENDS) {
  const bitsEqual = (a: Float32Array | undefined, b: Float32Array | undefined, what: string) => sameValues(backend, a, b, what);
  describe(`trunk features (${backend})`, { skip: skipReason(backend) }, () => {
    for (const c of CASES) {
      test(`${c.name}: terms from the trunk are the same ${backend === 'webgpu' ? 'values (float32 precision)' : 'bits'} as from the series, at two checkpoints`, async () => {
        await useBackend(backend);
        const m = prepareModel(c.make());
        try {
          const n = 7;
          const x = await realSeries(n, c.length, c.channels);
          const labels = Array.from({ length: n }, (_, i) => i % m.classes);
          const plan = makePlan(m.graph, c.subset);
          const split = trunkSplit(plan);
          const t = await noLeak(() => trunkFeatures(m, x, { subset: c.subset, chunkSize: 3 }));
          if (c.subset === 'adapter_head') {
            // The adapter reads the series: nothing before the subset to keep.
            assert.equal(t.saves, false);
            assert.equal(split.saves, false);
            return;
          }
          assert.equal(t.saves, true);
          assert.equal(t.features.length, n * t.width);
          // The server mixes rows stored by earlier batches with rows computed now: a sample's features do not depend on its batch.
          bitsEqual((await trunkFeatures(m, x, { subset: c.subset, chunkSize: n })).features, t.features, `${c.name} features in one chunk and in chunks of 3`);
          bitsEqual((await trunkFeatures(m, x.subarray(2 * c.length * c.channels), { subset: c.subset, chunkSize: 2 })).features, t.features.subarray(2 * t.width), `${c.name} features of a later batch`);
          for (const layer of plan.layers) assert.ok(!split.frontier.some((id) => m.graph.ops[id]?.name === layer), `${layer} of the subset is not in the trunk`);
          const fromTrunk = { width: t.width };
          for (const step of [0, 1]) {
            if (step === 1) await retrainHead(m, plan.layers, 7); // the trunk features of step 0 serve step 1
            const a = await computeTerms(m, x, labels, { subset: c.subset, chunkSize: 3, returnK: true });
            const b = await noLeak(() => computeTerms(m, t.features, labels, { subset: c.subset, chunkSize: 3, returnK: true, fromTrunk }));
            for (const k of ['logits', 'probs', 'loss', 'aNorm', 'hTrace', 'hMinEig', 'gNorm', 'kNorm', 'kTrace', 'K'] as const) bitsEqual(b[k] as Float32Array, a[k] as Float32Array, `${c.name} step ${step} ${k}`);
            const xa = await crossKernel(m, x.subarray(0, 3 * c.length * c.channels), x, { subset: c.subset, chunkSize: 3 });
            const xb = await noLeak(() => crossKernel(m, t.features.subarray(0, 3 * t.width), t.features, { subset: c.subset, chunkSize: 3, fromTrunk }));
            bitsEqual(xb.K, xa.K, `${c.name} step ${step} cross K`);
            bitsEqual(xb.kCross, xa.kCross, `${c.name} step ${step} kCross`);
            bitsEqual(await noLeak(() => logitsFromTrunk(m, t.features, { subset: c.subset, width: t.width, chunkSize: 3 })), await logitsOf(m, x, 3), `${c.name} step ${step} logits`);
          }
          // Features of another subset are refused, not misread.
          await assert.rejects(selfKernel(m, t.features, { subset: c.subset, fromTrunk: { width: t.width + 1 } }), /trunk features/);
        } finally {
          m.dispose();
        }
      });
    }
  });
}

test('the trunk of Mantis head mode is the whole encoder: the frontier is the embedding', () => {
  const m = prepareModel(mantis(SMALL_MANTIS));
  try {
    const split = trunkSplit(makePlan(m.graph, 'head'));
    assert.deepEqual(
      split.frontier.map((id) => m.graph.ops[id]?.name),
      ['embedding'],
    );
    assert.equal(split.width, 2 * 8); // channels × dim
    const trunkLayers = m.graph.ops.filter((op) => split.trunk[op.id]).map((op) => op.name);
    assert.ok(trunkLayers.includes('block0_qkv') && !trunkLayers.includes('head_norm') && !trunkLayers.includes('head'));
  } finally {
    m.dispose();
  }
});
