/**
 * The engine's SIMD kernels for the wasm backend (src/compute/kernels) against plain float64
 * JavaScript, on random shapes including odd sizes (rows, widths and heads that are not multiples
 * of the SIMD width), and the fast path on the cpu backend, which does not use them.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionSimd, simdActive } from '../../src/compute/kernels/simd.js';
import { assertClose, useBackend } from './helpers.js';

/** Seeded values in [−scale, scale). */
function values(length: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length }, () => (((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1) * scale);
}

/** softmax(q kᵀ/√dh) v per sample and head in float64, with the probabilities. */
function attention64(x: Float32Array, n: number, t: number, h: number, dh: number): { out: Float64Array; p: Float64Array } {
  const d = h * dh;
  const out = new Float64Array(n * t * d);
  const p = new Float64Array(n * h * t * t);
  const at = (s: number, i: number, col: number) => x[(s * t + i) * 3 * d + col] as number;
  for (let s = 0; s < n; s++) {
    for (let c = 0; c < h; c++) {
      for (let i = 0; i < t; i++) {
        const row = new Float64Array(t);
        for (let j = 0; j < t; j++) {
          let dot = 0;
          for (let e = 0; e < dh; e++) dot += at(s, i, c * dh + e) * at(s, j, d + c * dh + e);
          row[j] = dot / Math.sqrt(dh);
        }
        const m = Math.max(...row);
        let sum = 0;
        for (let j = 0; j < t; j++) sum += row[j] = Math.exp((row[j] as number) - m);
        for (let j = 0; j < t; j++) p[((s * h + c) * t + i) * t + j] = (row[j] as number) / sum;
        for (let e = 0; e < dh; e++) {
          let o = 0;
          for (let j = 0; j < t; j++) o += (p[((s * h + c) * t + i) * t + j] as number) * at(s, j, 2 * d + c * dh + e);
          out[(s * t + i) * d + c * dh + e] = o;
        }
      }
    }
  }
  return { out, p };
}

describe('SIMD kernels (wasm)', () => {
  test('attention: output and probabilities equal float64 on odd shapes; large scores stay finite', async () => {
    await useBackend('wasm');
    assert.equal(simdActive(), true);
    // [n, T, heads, dh]: T and dh below, at and above multiples of 4 and 16; one head as wide as the tokens.
    const shapes = [
      [2, 33, 8, 16],
      [1, 5, 3, 7],
      [3, 1, 2, 4],
      [2, 9, 1, 33],
      [1, 17, 2, 18],
      [2, 4, 4, 1],
    ] as const;
    for (const [k, [n, t, h, dh]] of shapes.entries()) {
      for (const scale of [1, 30]) {
        const x = values(n * t * 3 * h * dh, 11 + k, scale);
        const before = tf.memory().numTensors;
        const [out, p] = tf.tidy(() => {
          const r = attentionSimd(tf.tensor3d(x, [n, t, 3 * h * dh]), h);
          return [r.out.dataSync() as Float32Array, r.p.dataSync() as Float32Array];
        });
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
        const want = attention64(x, n, t, h, dh);
        const what = `n ${n}, T ${t}, ${h} heads of ${dh}, scores ×${scale}`;
        assert.ok(out.every(Number.isFinite) && p.every(Number.isFinite), `${what}: finite`);
        assertClose(p, want.p, scale === 1 ? 1e-5 : 5e-4, `${what}: p`);
        assertClose(out, want.out, scale === 1 ? 1e-5 : 5e-4, `${what}: out`);
      }
    }
  });

  test('the kernels serve the wasm backend only', async () => {
    await useBackend('cpu');
    assert.equal(simdActive(), false);
    await useBackend('wasm');
    assert.equal(simdActive(), true);
  });
});
