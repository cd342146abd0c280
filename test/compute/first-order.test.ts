/**
 * The first-order identity: one real SGD step of rate η on (x_u, y_u), taken by tfjs's own
 * optimiser, changes log π(·|x_o) by −η A K G up to an error that shrinks like η².
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstOrder, loadWeights, logitsOf, prepareModel, serializeModel } from '../../src/compute/index.js';
import type { EngineModel } from '../../src/compute/index.js';
import { ucrSeries } from '../../bench/ucr.js';
import { BACKENDS, skipReason, noLeak, realSeries, tinyCnn, tinyTransformer, useBackend } from './helpers.js';

function logSoftmax(z: Float32Array, V: number): Float64Array {
  const out = new Float64Array(z.length);
  for (let s = 0; s < z.length / V; s++) {
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, z[s * V + j] as number);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp((z[s * V + j] as number) - max);
    for (let j = 0; j < V; j++) out[s * V + j] = (z[s * V + j] as number) - max - Math.log(sum);
  }
  return out;
}

/** Takes one tfjs SGD step on the mean cross-entropy of (xu, yu) and returns the measured Δlog π(x_o). */
async function sgdStep(m: EngineModel, xo: Float32Array, xu: Float32Array, yu: number[], eta: number): Promise<Float64Array> {
  const V = m.classes;
  const [length, channels] = m.inputShape;
  const before = logSoftmax(await logitsOf(m, xo), V);
  const opt = tf.train.sgd(eta);
  tf.tidy(() => {
    const x = tf.tensor3d(xu, [yu.length, length, channels]);
    const y = tf.oneHot(tf.tensor1d(yu, 'int32'), V);
    opt.minimize(() => tf.losses.softmaxCrossEntropy(y, m.model.apply(x, { training: false }) as tf.Tensor) as tf.Scalar, false, m.model.trainableWeights.map((w) => w.read() as tf.Variable));
  });
  opt.dispose();
  const after = logSoftmax(await logitsOf(m, xo), V);
  return after.map((v, i) => v - (before[i] as number));
}

for (const backend of BACKENDS) {
  describe(`first-order prediction on ${backend}`, { skip: skipReason(backend) }, () => {
    for (const [name, build] of [['cnn', tinyCnn], ['transformer', tinyTransformer]] as const) {
      test(`${name}: measured Δlog π = −η A K G + O(η²)`, async () => {
        await useBackend(backend);
        const m = prepareModel(build());
        const start = await serializeModel(m.model);
        const xo = await realSeries(4, 24, 2);
        const xu = (await realSeries(6, 24, 2)).subarray(4 * 48);
        const yu = (await ucrSeries('GunPoint', 'TRAIN')).labels.slice(4, 6);
        const errors: number[] = [];
        for (const eta of [0.02, 0.01, 0.005]) {
          loadWeights(m, start);
          const predicted = await noLeak(() => firstOrder(m, { xo, xu, yu, eta }));
          const measured = await sgdStep(m, xo, xu, yu, eta);
          let err = 0;
          let size = 0;
          measured.forEach((v, i) => {
            err = Math.max(err, Math.abs(v - (predicted.deltaLogProbs[i] as number)));
            size = Math.max(size, Math.abs(v));
          });
          assert.ok(size > 1e-3, 'the step must move the predictions');
          assert.ok(err < 0.2 * size, `η = ${eta}: error ${err} against change ${size}`);
          errors.push(err);
        }
        // Halving η should quarter the error: second order.
        for (let i = 1; i < errors.length; i++) {
          const ratio = (errors[i - 1] as number) / (errors[i] as number);
          assert.ok(ratio > 3 && ratio < 5.5, `error ratio ${ratio.toFixed(2)} for η halved (errors ${errors.map((e) => e.toExponential(2)).join(', ')})`);
        }
        m.dispose();
      });
    }
  });
}
