/**
 * The engine's SIMD kernels for the wasm backend (src/compute/kernels) against plain float64
 * JavaScript, on random shapes including odd sizes (rows, widths and heads that are not multiples
 * of the SIMD width), and the fast path on the cpu backend, which does not use them.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionSimd, geluSimd, layerNormSimd, simdActive } from '../../src/compute/kernels/simd.js';
import { assertClose, useBackend } from './helpers.js';
import { erf64 } from './reference64.js';

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

  test('LayerNormalization: output, x̂ and 1/σ equal float64, with and without γ and β, odd widths, ε 1e-15', async () => {
    await useBackend('wasm');
    // [rows, width, ε]: widths below, at and above multiples of 4; a constant row with a tiny ε.
    for (const [k, [rows, c, eps]] of ([[7, 256, 1e-5], [3, 5, 1e-5], [1, 2, 1e-3], [4, 33, 1e-15]] as const).entries()) {
      const x = values(rows * c, 21 + k, 3);
      if (rows > 1) x.fill(0.25, 0, c); // the first row constant: x̂ = 0
      const gamma = values(c, 31 + k);
      const beta = values(c, 41 + k);
      for (const [g, b] of [[true, true], [true, false], [false, true], [false, false]]) {
        const before = tf.memory().numTensors;
        const [out, xhat, rstd] = tf.tidy(() => {
          const r = layerNormSimd(tf.tensor2d(x, [rows, c]), eps, g ? tf.tensor1d(gamma) : undefined, b ? tf.tensor1d(beta) : undefined);
          assert.deepEqual(r.rstd.shape, [rows, 1]);
          return [r.out.dataSync() as Float32Array, r.xhat.dataSync() as Float32Array, r.rstd.dataSync() as Float32Array];
        });
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
        const wantOut = new Float64Array(rows * c);
        const wantHat = new Float64Array(rows * c);
        const wantR = new Float64Array(rows);
        for (let r = 0; r < rows; r++) {
          const row = Array.from(x.subarray(r * c, (r + 1) * c));
          const mean = row.reduce((a, v) => a + v, 0) / c;
          const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / c;
          wantR[r] = 1 / Math.sqrt(variance + eps);
          for (let j = 0; j < c; j++) {
            const h = ((row[j] as number) - mean) * (wantR[r] as number);
            wantHat[r * c + j] = h;
            wantOut[r * c + j] = h * (g ? (gamma[j] as number) : 1) + (b ? (beta[j] as number) : 0);
          }
        }
        const what = `${rows}×${c}, ε ${eps}, γ ${g}, β ${b}`;
        assertClose(xhat, wantHat, 1e-6, `${what}: x̂`);
        assertClose(out, wantOut, 1e-6, `${what}: out`);
        assertClose(rstd, wantR, 1e-6, `${what}: 1/σ`);
      }
    }
  });

  test('GELU: equal float64 z·½(1 + erf(z/√2)) elementwise, tails and zero included', async () => {
    await useBackend('wasm');
    const z = Float32Array.from([...values(4099, 3, 6), 0, -0, 1e-30, -1e-30, 10, -10, 40, -40, 3.9, -3.9, 5.7, -5.7]);
    const out = tf.tidy(() => geluSimd(tf.tensor1d(z)).dataSync() as Float32Array);
    const want = Array.from(z, (v) => v * 0.5 * (1 + erf64(v / Math.SQRT2)));
    assertClose(out, want, 2e-8, 'gelu');
    // Elementwise: within 1 float32 ulp of |z|/2 (the absolute error of 1 + erf near −1) plus rounding.
    z.forEach((v, i) => {
      const err = Math.abs((out[i] as number) - (want[i] as number));
      assert.ok(err <= 1.2e-7 * Math.max(Math.abs(want[i] as number), Math.abs(v) / 2), `gelu(${v}) = ${out[i]}, float64 ${want[i]}`);
    });
  });

  test('SplitV (wasm, by views): equal to slices on the cpu backend, on every axis, with a remainder size', async () => {
    const shape = [3, 4, 7, 5];
    const x = values(3 * 4 * 7 * 5, 5);
    const run = () =>
      tf.tidy(() => {
        const t = tf.tensor4d(x, shape as [number, number, number, number]);
        const parts = [...tf.split(t, [2, 1, 4], 2), ...tf.split(t, 3, 0), ...tf.split(t, [1, -1], 3), ...tf.split(t, 2, 1)];
        return parts.map((p) => ({ shape: p.shape, values: Array.from(p.dataSync()) }));
      });
    await useBackend('cpu');
    const cpu = run();
    await useBackend('wasm');
    const before = tf.memory().numTensors;
    assert.deepEqual(run(), cpu);
    assert.equal(tf.memory().numTensors, before);
  });

  test('the kernels serve the wasm backend only', async () => {
    await useBackend('cpu');
    assert.equal(simdActive(), false);
    await useBackend('wasm');
    assert.equal(simdActive(), true);
  });
});
