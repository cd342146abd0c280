/**
 * The kernels the engine adds to or replaces in tfjs-backend-wasm, against plain float64
 * JavaScript and against the cpu backend: the Gram kernel, Slice/Unpack, and the JS
 * Conv2DBackpropFilter and UnsortedSegmentSum.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gram } from '../../src/compute/gram.js';
import { assertClose, useBackend } from './helpers.js';

function values(shape: number[], seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
}

/** Runs f on cpu and on wasm with the same inputs and returns both outputs. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const out: Float32Array[][] = [];
  for (const backend of ['cpu', 'wasm'] as const) {
    await useBackend(backend);
    const before = tf.memory().numTensors;
    const r = tf.tidy(() => {
      const t = f();
      return Array.isArray(t) ? t : [t];
    });
    out.push(r.map((t) => t.dataSync() as Float32Array));
    tf.dispose(r);
    assert.equal(tf.memory().numTensors, before);
  }
  return [out[0] as Float32Array[], out[1] as Float32Array[]];
}

describe('wasm kernels', () => {
  test('Gram matrices: rows of odd length, V not a multiple of 4', async () => {
    await useBackend('wasm');
    for (const [n, V, P] of [[3, 7, 1031], [2, 10, 4], [1, 1, 3], [2, 5, 700]] as const) {
      const x = values([n, V, P], 7 + P);
      const K = tf.tidy(() => gram(tf.tensor3d(x, [n, V, P])).dataSync() as Float32Array);
      const want = new Float64Array(n * V * V);
      for (let s = 0; s < n; s++) {
        for (let a = 0; a < V; a++) {
          for (let b = 0; b < V; b++) {
            let d = 0;
            for (let p = 0; p < P; p++) d += (x[(s * V + a) * P + p] as number) * (x[(s * V + b) * P + p] as number);
            want[(s * V + a) * V + b] = d;
          }
        }
      }
      assertClose(K, want, 1e-6, `gram ${n}×${V}×${P}`);
    }
  });

  test('Slice and Unpack (contiguous, strided, rank 5) match the cpu backend', async () => {
    const x = values([3, 4, 5, 6, 2], 3);
    const [cpu, wasm] = await onBoth(() => {
      const t = tf.tensor(x, [3, 4, 5, 6, 2]);
      return [
        tf.slice(t, [1, 0, 0, 0, 0], [1, 4, 5, 6, 2]),
        tf.slice(t, [0, 1, 2, 3, 1], [3, 2, 3, 2, 1]),
        tf.slice(t, [2, 3, 4, 5, 1], [1, 1, 1, 1, 1]),
        tf.slice(tf.reshape(t, [12, 60]), [5, 7], [4, 20]),
        ...tf.unstack(t, 0),
        ...tf.unstack(t, 2),
        ...tf.unstack(t, 4),
      ];
    });
    cpu.forEach((c, i) => assert.deepEqual(wasm[i], c, `output ${i}`));
  });

  test('Conv2DBackpropFilter (strided, padded) and UnsortedSegmentSum match the cpu backend', async () => {
    const xv = values([2, 9, 3], 5);
    const wv = values([4, 3, 5], 6);
    const [cpu, wasm] = await onBoth(() => {
      const w = tf.variable(tf.tensor3d(wv, [4, 3, 5]));
      const x = tf.tensor3d(xv, [2, 9, 3]);
      const outs: tf.Tensor[] = [];
      for (const [stride, pad] of [[1, 'same'], [2, 'valid'], [2, 'same']] as const) {
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.conv1d(x, w as unknown as tf.Tensor3D, stride, pad))), [w]);
        outs.push(grads[w.name] as tf.Tensor);
      }
      const table = tf.tensor2d(values([6, 4], 8), [6, 4]);
      outs.push(tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, [0, 2, 2, 5, 0]))))(table));
      w.dispose();
      return outs;
    });
    cpu.forEach((c, i) => assertClose(wasm[i] as Float32Array, c, 1e-6, `gradient ${i}`));
  });
});
