/**
 * Mantis in the engine: every layer on the fast path (no generic fallback), J equal to tfjs
 * autodiff on every backend, the fine-tuning modes' subsets, the no-gradient statistics, the
 * stored format, and the real size. (Agreement with PyTorch itself: test/io/safetensors-import.)
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ChannelSeries,
  MANTIS_DEFAULTS,
  PatchMean,
  ScalarEncoder,
  jacobian,
  loadModel,
  logitsOf,
  mantis,
  prepareModel,
  selfKernel,
  serializeModel,
} from '../../src/compute/index.js';
import type { MantisConfig } from '../../src/compute/index.js';
import { BACKENDS, RUNNING, skipReason, assertClose, noLeak, realSeries, tinyCnn, useBackend } from './helpers.js';

/**
 * n series of `channels` channels, each channel a different real series: channels that are
 * affine copies of one series would give the adapter no gradient at all (Mantis normalises
 * every series, so an adapter mixing copies changes nothing).
 */
async function mixedChannels(n: number, length: number, channels: number): Promise<Float32Array> {
  const one = await realSeries(n * channels, length, 1);
  const x = new Float32Array(n * length * channels);
  for (let s = 0; s < n; s++) for (let t = 0; t < length; t++) for (let c = 0; c < channels; c++) x[(s * length + t) * channels + c] = one[(c * n + s) * length + t] as number;
  return x;
}

const TINY: Partial<MantisConfig> = { length: 32, channels: 1, classes: 3, patches: 4, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 12, scalarDim: 4, scalarScales: [0.01, 1, 100] };

/** Tiny Mantis variants that together use every option of the architecture. */
const VARIANTS: Record<string, Partial<MantisConfig>> = {
  'BatchNorm head, one channel': TINY,
  'adapter 3→2 channels, LayerNorm head, two layers': { ...TINY, channels: 3, adapterChannels: 2, headNorm: 'layernorm', depth: 2 },
  'one head as wide as the tokens (no output projection), odd window': { ...TINY, length: 30, patches: 2, heads: 1, headDim: 8, channels: 2 },
};

for (const backend of BACKENDS) {
  describe(`Mantis on ${backend}`, { skip: skipReason(backend) }, () => {
    for (const [name, config] of Object.entries(VARIANTS)) {
      test(`${name}: fast path only, J = tfjs autodiff, over all, head and adapter_head`, async () => {
        await useBackend(backend);
        const m = prepareModel(mantis({ ...config, seed: 4 }));
        assert.deepEqual(m.generic, [], 'every Mantis layer has a fast-path rule');
        const [length, channels] = m.inputShape;
        const x = await mixedChannels(2, length, channels);
        for (const subset of ['all', 'head', 'adapter_head'] as const) {
          const fast = await noLeak(() => jacobian(m, x, { subset }));
          assert.equal(fast.info.path, 'fast');
          assert.deepEqual(fast.info.genericLayers, []);
          const auto = await noLeak(() => jacobian(m, x, { subset, path: 'generic' }));
          assertClose(fast.J, auto.J, 1e-5, `J over ${subset}`);
          assertClose(fast.logits, auto.logits, 1e-6, 'logits');
        }
        m.dispose();
      });
    }
  });
}

describe('Mantis subsets and structure', () => {
  test("subsets: 'head' is head_norm + head, 'adapter_head' adds the adapter; K over a subset is the sum of its layers'", async () => {
    await useBackend('wasm');
    const plain = prepareModel(mantis({ ...TINY, seed: 2 }));
    const adapted = prepareModel(mantis({ ...TINY, channels: 2, adapterChannels: 1, seed: 2 }));
    const x1 = await realSeries(3, 32, 1);
    const x2 = await mixedChannels(3, 32, 2);
    const head = await selfKernel(plain, x1, { subset: 'head' });
    assert.deepEqual(head.info.subset, ['head_norm', 'head']);
    assert.equal(head.info.parameters, 2 * 8 + 8 * 3 + 3);
    assert.deepEqual((await selfKernel(plain, x1, { subset: 'adapter_head' })).info.subset, ['head_norm', 'head'], 'no adapter: the head');
    const ah = await selfKernel(adapted, x2, { subset: 'adapter_head' });
    assert.deepEqual(ah.info.subset, ['adapter', 'head_norm', 'head']);
    const parts = await Promise.all([['adapter'], ['head_norm'], ['head']].map((s) => selfKernel(adapted, x2, { subset: s })));
    const sum = (ah.K as Float32Array).map((_, i) => parts.reduce((a, p) => a + (p.K as Float32Array)[i]!, 0));
    assertClose(ah.K as Float32Array, sum, 1e-5, 'K(adapter_head) = K(adapter) + K(head_norm) + K(head)');
    const all = await selfKernel(adapted, x2);
    for (let s = 0; s < 3; s++) assert.ok(all.kTrace[s]! > ah.kTrace[s]!, 'the whole model moves more than its head');
    // Other models keep their own meaning of 'head' and have no 'adapter_head'.
    const cnn = prepareModel(tinyCnn());
    await assert.rejects(selfKernel(cnn, await realSeries(1, 24, 2), { subset: 'adapter_head' }), /only a Mantis model names it/);
    for (const m of [plain, adapted, cnn]) m.dispose();
  });

  test('the difference and the patch statistics carry no gradient (torch.no_grad in Mantis)', async () => {
    await useBackend('cpu');
    // With an adapter, J of the adapter flows through the normalised series only: the same J as
    // a model whose statistics are constants, which autodiff of the layers agrees with.
    const m = prepareModel(mantis({ ...TINY, channels: 2, adapterChannels: 1, seed: 6 }));
    const x = await mixedChannels(2, 32, 2);
    const fast = await jacobian(m, x, { subset: ['adapter'] });
    const auto = await jacobian(m, x, { subset: ['adapter'], path: 'generic' });
    assertClose(fast.J, auto.J, 1e-5, 'adapter J');
    const stop = m.graph.ops.filter((o) => o.kind === 'stopGradient').map((o) => o.name);
    assert.deepEqual(stop.sort(), ['diff', 'stat_mean', 'stat_std']);
    const g = tf.grad((t: tf.Tensor) => tf.sum(m.model.getLayer('stat_std').apply(t) as tf.Tensor))(tf.randomNormal([1, 1, 32, 1], 0, 1, 'float32', 3));
    assert.deepEqual(Array.from(new Set(g.dataSync())), [0], 'the layer itself has a zero gradient');
    g.dispose();
    m.dispose();
  });

  test('ScalarEncoder on a signal path (its input backward, through the scale weights) = autodiff', async () => {
    for (const backend of RUNNING) {
      await useBackend(backend);
      const input = tf.input({ shape: [16, 1], name: 'input' });
      let h = tf.layers.dense({ units: 2, name: 'pre', kernelInitializer: tf.initializers.randomNormal({ seed: 1 }), biasInitializer: tf.initializers.constant({ value: 0.3 }) }).apply(input) as tf.SymbolicTensor;
      h = new ChannelSeries({ name: 'series' }).apply(h) as tf.SymbolicTensor; // [n, 2, 16, 1]
      h = new PatchMean({ name: 'means', patches: 4 }).apply(h) as tf.SymbolicTensor; // [n, 2, 4, 1]
      h = new ScalarEncoder({ name: 'enc', units: 5, scales: [0.1, 1, 10], seed: 3 }).apply(h) as tf.SymbolicTensor;
      h = tf.layers.flatten({ name: 'flat' }).apply(h) as tf.SymbolicTensor;
      const out = tf.layers.dense({ units: 3, name: 'head', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }).apply(h) as tf.SymbolicTensor;
      const m = prepareModel(tf.model({ inputs: input, outputs: out }));
      assert.deepEqual(m.generic, []);
      const x = await realSeries(3, 16, 1);
      const fast = await noLeak(() => jacobian(m, x));
      const auto = await jacobian(m, x, { path: 'generic' });
      assertClose(fast.J, auto.J, 2e-5, `J through the scalar encoder's input (${backend})`);
      m.dispose();
    }
  });

  test('Mantis-8M: 8.0M parameters; stored format round trip (custom layers in model.json)', async () => {
    await useBackend('cpu');
    const big = mantis();
    assert.equal(big.countParams() - 512 /* moving statistics */, 8_040_714);
    assert.deepEqual(big.outputs[0]?.shape, [null, MANTIS_DEFAULTS.classes]);
    big.dispose();
    const small = prepareModel(mantis({ ...TINY, channels: 2, adapterChannels: 2, seed: 9 }));
    const stored = await serializeModel(small.model);
    const json = JSON.parse(JSON.stringify(stored.modelTopology)) as object;
    const loaded = await loadModel({ modelTopology: json, weightSpecs: stored.weightSpecs, weightData: stored.weightData });
    assert.deepEqual(loaded.generic, []);
    const x = await realSeries(2, 32, 2);
    assertClose(await logitsOf(loaded, x), await logitsOf(small, x), 0, 'logits after model.json');
    const byName = await loadModel({ architecture: 'mantis', config: { ...TINY, channels: 2, adapterChannels: 2 }, weightSpecs: stored.weightSpecs, weightData: stored.weightData });
    assertClose((await selfKernel(byName, x)).kNorm, (await selfKernel(small, x)).kNorm, 0, 'kNorm, built-in by name');
    for (const m of [small, loaded, byName]) m.dispose();
  });

  test('configs that cannot be built are refused with the field named', () => {
    assert.throws(() => mantis({ length: 100, patches: 32 }), /length 100 must be a multiple of patches 32/);
    assert.throws(() => mantis({ heads: 0 }), /heads must be an integer ≥ 1/);
    assert.throws(() => mantis({ scalarScales: [] }), /scalarScales must be a non-empty list/);
    assert.throws(() => mantis({ headNorm: 'rmsnorm' as 'layernorm' }), /headNorm must be 'batchnorm' or 'layernorm'/);
    assert.throws(() => mantis({ length: 32, patches: 32 }), /at least 2 time steps/);
  });
});
