/**
 * Layers the fast path does not know still get exact terms, through tfjs autodiff of those
 * layers only, and the result says so.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jacobian, prepareModel, selfKernel } from '../../src/compute/index.js';
import { BACKENDS, skipReason, assertClose, noLeak, realSeries, useBackend } from './helpers.js';

/** A channel gate x·σ(α) with a trainable α: a custom layer the engine has never seen. */
class Gate extends tf.layers.Layer {
  static className = 'TestGate';
  private alpha: tf.LayerVariable | undefined;

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const c = (inputShape as tf.Shape)[2] as number;
    this.alpha = this.addWeight('alpha', [c], 'float32', tf.initializers.randomNormal({ seed: 4 }));
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs, tf.sigmoid((this.alpha as tf.LayerVariable).read())));
  }
}
tf.serialization.registerClass(Gate);

function modelWithUnknownLayers(): tf.LayersModel {
  const input = tf.input({ shape: [24, 2], name: 'input' });
  let x = tf.layers.conv1d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }), name: 'conv' }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.reshape({ targetShape: [12, 8], name: 'fold' }).apply(x) as tf.SymbolicTensor;
  x = new Gate({ name: 'gate' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv1d({ filters: 3, kernelSize: 2, padding: 'valid', activation: 'tanh', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }), name: 'conv2' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling1d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }), name: 'head' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

for (const backend of BACKENDS) {
  describe(`generic path on ${backend}`, { skip: skipReason(backend) }, () => {
    test('unknown layers are named, and their J is exact', async () => {
      await useBackend(backend);
      const m = prepareModel(modelWithUnknownLayers());
      assert.deepEqual(
        m.generic.map((g) => g.layer),
        ['fold', 'gate'],
      );
      assert.match(m.generic[1]?.reason ?? '', /TestGate/);
      const x = await realSeries(3, 24, 2);
      const hybrid = await noLeak(() => jacobian(m, x));
      assert.equal(hybrid.info.path, 'generic');
      assert.deepEqual(hybrid.info.genericLayers, ['fold', 'gate']);
      const auto = await noLeak(() => jacobian(m, x, { path: 'generic' }));
      assertClose(hybrid.J, auto.J, 2e-6, 'fast path with autodiff for unknown layers vs autodiff everywhere');
      assert.deepEqual(
        hybrid.params.map((p) => p.name),
        ['conv/kernel', 'conv/bias', 'gate/alpha', 'conv2/kernel', 'conv2/bias', 'head/kernel', 'head/bias'],
      );
      // Above the unknown layers everything stays on the fast path.
      const head = await noLeak(() => selfKernel(m, x, { subset: ['conv2', 'head'] }));
      assert.equal(head.info.path, 'fast');
      assert.deepEqual(head.info.genericLayers, []);
      m.dispose();
    });
  });
}
