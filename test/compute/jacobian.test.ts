/**
 * J against finite differences of an independent float64 forward pass, on every backend, for
 * models that together use every op of the fast path; and the fast path against tfjs autodiff.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jacobian, logitsOf, prepareModel } from '../../src/compute/index.js';
import { BACKENDS, skipReason, assertClose, mixedModel, negativePoolModel, noLeak, realSeries, tinyCnn, tinyTransformer, useBackend } from './helpers.js';
import { reference64 } from './reference64.js';

const MODELS = {
  cnn: tinyCnn,
  transformer: tinyTransformer,
  mixed: mixedModel,
  negativePool: negativePoolModel,
};

for (const backend of BACKENDS) {
  describe(`J on ${backend}`, { skip: skipReason(backend) }, () => {
    for (const [name, build] of Object.entries(MODELS)) {
      test(`${name}: fast path = float64 finite differences, and = tfjs autodiff`, async () => {
        await useBackend(backend);
        const model = build();
        const m = prepareModel(model);
        assert.equal(m.generic.length, 0, `fast path should know every layer: ${JSON.stringify(m.generic)}`);
        const [length, channels] = m.inputShape;
        const n = 3;
        const x = await realSeries(n, length, channels);
        const fast = await noLeak(() => jacobian(m, x));
        assert.equal(fast.info.path, 'fast');
        const P = m.parameterCount;
        assert.equal(fast.J.length, n * m.classes * P);
        const ref = await reference64(model);
        for (let s = 0; s < n; s++) {
          const xs = Float64Array.from(x.subarray(s * length * channels, (s + 1) * length * channels));
          assertClose(fast.logits.subarray(s * m.classes, (s + 1) * m.classes), ref.logits(ref.theta, xs), 2e-6, `logits of sample ${s}`);
          assertClose(fast.J.subarray(s * m.classes * P, (s + 1) * m.classes * P), ref.jacobian(xs), 2e-5, `J of sample ${s}`);
        }
        const auto = await noLeak(() => jacobian(m, x, { path: 'generic' }));
        assert.equal(auto.info.path, 'generic');
        assertClose(fast.J, auto.J, 2e-6, 'fast vs autodiff J');
        assertClose(await logitsOf(m, x), fast.logits, 1e-6, 'forward-only logits');
        m.dispose();
      });
    }

    test('negative max-pool windows: the gradient goes to the first maximum', async () => {
      await useBackend(backend);
      // tfjs-backend-wasm's own MaxPoolGrad is wrong here; the engine registers an exact one.
      const x = tf.tensor4d([-3, -1, -2, -5, -4, -4, -9, -7], [1, 1, 8, 1]);
      const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, [1, 2], [1, 2], 'valid'), tf.tensor4d([1, 2, 3, 4], [1, 1, 4, 1]))))(x);
      assert.deepEqual(Array.from(await g.data()), [0, 1, 2, 0, 3, 0, 0, 4]);
      tf.dispose([x, g]);
    });

    test('Conv1D weight gradients through tfjs autodiff', async () => {
      await useBackend(backend);
      // wasm has no Conv2DBackpropFilter of its own; compare with the closed form on a 1-tap conv.
      const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 3, 2]);
      const w = tf.variable(tf.tensor3d([0.5, -1, 2, 0.25], [1, 2, 2]));
      const { grads } = tf.variableGrads(() => tf.sum(tf.conv1d(x, w as unknown as tf.Tensor3D, 1, 'valid')), [w]);
      // d/dW[0, ci, co] of Σ_t Σ_co x[t]·W = Σ_t x[t, ci]
      assert.deepEqual(Array.from(await (grads[w.name] as tf.Tensor).data()), [9, 9, 12, 12]);
      tf.dispose([x, w, ...Object.values(grads)]);
    });
  });
}
