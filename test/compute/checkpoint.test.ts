/** The stored checkpoint format round-trips, and loaded models give the same terms. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  CNN1D_DEFAULTS,
  TRANSFORMER_DEFAULTS,
  cnn1d,
  loadModel,
  loadWeights,
  logitsOf,
  modelJsonOf,
  prepareModel,
  selfKernel,
  serializeModel,
  transformer,
  weightSpecsOf,
} from '../../src/compute/index.js';
import { keptTransposedKernels } from '../../src/compute/ops/transposed-kernels.js';
import { assertClose, mixedModel, noLeak, realSeries, tinyTransformer, useBackend } from './helpers.js';

describe('stored checkpoints', () => {
  test('serialise → load gives the same logits and K (custom layers included)', async () => {
    await useBackend('wasm');
    for (const build of [tinyTransformer, mixedModel]) {
      const original = prepareModel(build());
      const stored = await noLeak(() => serializeModel(original.model));
      assert.ok(stored.weightData instanceof ArrayBuffer);
      assert.equal(stored.weightData.byteLength, original.model.countParams() * 4);
      assert.deepEqual(stored.weightSpecs[0]?.dtype, 'float32');
      const [length, channels] = original.inputShape;
      const x = await realSeries(3, length, channels);
      const loaded = await loadModel(stored);
      assert.deepEqual(loaded.generic, []);
      assertClose(await logitsOf(loaded, x), await logitsOf(original, x), 0, 'logits');
      assertClose((await selfKernel(loaded, x)).K as Float32Array, (await selfKernel(original, x)).K as Float32Array, 0, 'K');
      // The model.json document plus the weight bytes, as a file pair would hold them.
      const json = JSON.parse(JSON.stringify(modelJsonOf(stored))) as tf.io.ModelJSON;
      const fromJson = await loadModel({ modelTopology: json.modelTopology as object, weightSpecs: weightSpecsOf(json), weightData: Buffer.from(stored.weightData) });
      assertClose(await logitsOf(fromJson, x), await logitsOf(original, x), 0, 'logits from model.json');
      for (const m of [original, loaded, fromJson]) m.dispose();
    }
  });

  test('a checkpoint loads into a built-in architecture, and another checkpoint replaces it', async () => {
    await useBackend('cpu');
    const config = { length: 32, channels: 1, classes: 4, filters: [3, 4], kernelSizes: [3, 3] };
    const a = await serializeModel(cnn1d({ ...config, seed: 1 }));
    const b = await serializeModel(cnn1d({ ...config, seed: 2 }));
    const m = await loadModel({ architecture: 'cnn1d', config, weightSpecs: a.weightSpecs, weightData: a.weightData });
    const x = await realSeries(2, 32, 1);
    const za = await logitsOf(m, x);
    await noLeak(() => loadWeights(m, b));
    const zb = await logitsOf(m, x);
    assert.notDeepEqual(za, zb);
    const ref = prepareModel(cnn1d({ ...config, seed: 2 }));
    assertClose(zb, await logitsOf(ref, x), 0, 'weights of checkpoint b');
    await noLeak(() => loadWeights(m, a));
    assertClose(await logitsOf(m, x), za, 0, 'back to checkpoint a');
    await assert.rejects(loadModel({ architecture: 'nope' as 'cnn1d' }), /unknown architecture 'nope'/);
    m.dispose();
    ref.dispose();
  });

  test("weights written into a model: K is a fresh model's (the Wᵀ a backward pass keeps follow the weights), and dispose releases them", async () => {
    await useBackend('wasm');
    const config = { length: 24, channels: 2, classes: 3, patch: 4, dim: 8, depth: 1, heads: 2, mlpDim: 12 };
    const a = await serializeModel(transformer({ ...config, seed: 1 }));
    const b = await serializeModel(transformer({ ...config, seed: 2 }));
    const held = keptTransposedKernels();
    const m = await loadModel({ architecture: 'transformer', config, weightSpecs: a.weightSpecs, weightData: a.weightData });
    const ref = await loadModel({ architecture: 'transformer', config, weightSpecs: b.weightSpecs, weightData: b.weightData });
    const x = await realSeries(3, 24, 2);
    const Ka = (await selfKernel(m, x)).K as Float32Array;
    assert.ok(keptTransposedKernels() > held, 'a backward pass through every layer keeps the dense kernels transposed');
    loadWeights(m, b);
    const Kb = (await selfKernel(m, x)).K as Float32Array;
    assert.notDeepEqual(Kb, Ka);
    assertClose(Kb, (await selfKernel(ref, x)).K as Float32Array, 0, 'K after new weights were written into the model');
    m.dispose();
    ref.dispose();
    assert.equal(keptTransposedKernels(), held, 'disposing the models releases what they kept');
  });

  test('a Sequential model.json with a softmax head: the engine works on its logits', async () => {
    await useBackend('cpu');
    const seq = tf.sequential({
      layers: [
        tf.layers.conv1d({ inputShape: [10, 1], filters: 2, kernelSize: 3, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
        tf.layers.flatten(),
        tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
      ],
    });
    const stored = await serializeModel(seq);
    const m = await loadModel(stored);
    assert.deepEqual(m.generic, []);
    assert.equal(m.graph.tail, 'denseSoftmax');
    const x = await realSeries(2, 10, 1);
    const z = await logitsOf(m, x);
    const probs = tf.tidy(() => (seq.predict(tf.tensor3d(x, [2, 10, 1])) as tf.Tensor).dataSync() as Float32Array);
    const soft = tf.tidy(() => tf.softmax(tf.tensor2d(z, [2, 3])).dataSync() as Float32Array);
    assertClose(soft, probs, 1e-6, 'softmax of the engine logits = the model output');
    m.dispose();
  });

  test('reference architectures: sizes and seeded weights', async () => {
    await useBackend('cpu');
    const c = cnn1d();
    const t = transformer();
    assert.equal(c.countParams(), 23594);
    assert.equal(t.countParams(), 69002);
    assert.deepEqual(c.outputs[0]?.shape, [null, CNN1D_DEFAULTS.classes]);
    assert.deepEqual(t.outputs[0]?.shape, [null, TRANSFORMER_DEFAULTS.classes]);
    const again = await serializeModel(cnn1d());
    const first = await serializeModel(c);
    assert.deepEqual(new Uint8Array(again.weightData), new Uint8Array(first.weightData), 'same seed, same weights');
    c.dispose();
    t.dispose();
  });
});
