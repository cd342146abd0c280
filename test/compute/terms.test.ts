/** The logit-only terms against their closed forms and an independent eigensolver. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { outputTerms } from '../../src/compute/index.js';
import { hMinEigOrth } from '../../src/compute/terms.js';
import { jacobiEigenvalues } from './helpers.js';

function rng(seed: number) {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

describe('output terms', () => {
  const V = 7;
  const n = 40;
  const next = rng(11);
  const logits = Float32Array.from({ length: n * V }, () => (next() - 0.5) * 8);
  const labels = Array.from({ length: n }, () => Math.floor(next() * V));
  const t = outputTerms(logits, V, labels, true);

  test('π is a softmax; loss, correct and G follow from it', () => {
    for (let s = 0; s < n; s++) {
      const z = Array.from(logits.subarray(s * V, (s + 1) * V));
      const max = Math.max(...z);
      const e = z.map((v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      const y = labels[s] as number;
      for (let j = 0; j < V; j++) assert.ok(Math.abs((t.probs[s * V + j] as number) - (e[j] as number) / sum) < 1e-7);
      assert.ok(Math.abs((t.loss?.[s] as number) + Math.log((e[y] as number) / sum)) < 1e-5);
      assert.equal(t.correct?.[s], z.indexOf(max) === y ? 1 : 0);
      const g = Array.from({ length: V }, (_, j) => (t.probs[s * V + j] as number) - (j === y ? 1 : 0));
      assert.ok(Math.abs((t.gNorm?.[s] as number) - Math.hypot(...g)) < 1e-6);
      g.forEach((v, j) => assert.ok(Math.abs((t.G?.[s * V + j] as number) - v) < 1e-7));
    }
  });

  test('‖A‖_F = √(V‖π‖² + V − 2), Tr A = V − 1, Tr H = 1 − ‖π‖², H PSD with H·1 = 0', () => {
    for (let s = 0; s < n; s++) {
      const pi = Array.from(t.probs.subarray(s * V, (s + 1) * V));
      const sq = pi.reduce((a, p) => a + p * p, 0);
      const A = t.A?.subarray(s * V * V, (s + 1) * V * V) as Float32Array;
      const H = t.H?.subarray(s * V * V, (s + 1) * V * V) as Float32Array;
      let fro = 0;
      let trA = 0;
      let trH = 0;
      for (let i = 0; i < V; i++) {
        trA += A[i * V + i] as number;
        trH += H[i * V + i] as number;
        let rowH = 0;
        for (let j = 0; j < V; j++) {
          fro += (A[i * V + j] as number) ** 2;
          rowH += H[i * V + j] as number;
          assert.ok(Math.abs((A[i * V + j] as number) - ((i === j ? 1 : 0) - (pi[j] as number))) < 1e-7);
          assert.ok(Math.abs((H[i * V + j] as number) - (H[j * V + i] as number)) < 1e-9);
        }
        assert.ok(Math.abs(rowH) < 1e-6, 'H·1 = 0');
      }
      assert.ok(Math.abs(Math.sqrt(fro) - Math.sqrt(V * sq + V - 2)) < 1e-5);
      assert.ok(Math.abs((t.aNorm[s] as number) - Math.sqrt(V * sq + V - 2)) < 1e-5);
      assert.ok(Math.abs(trA - (V - 1)) < 1e-5);
      assert.ok(Math.abs(trH - (1 - sq)) < 1e-6);
      assert.ok(Math.abs((t.hTrace[s] as number) - (1 - sq)) < 1e-6);
      const rows = Array.from({ length: V }, (_, i) => Array.from(H.subarray(i * V, (i + 1) * V), Number));
      const eig = jacobiEigenvalues(rows);
      assert.ok((eig[0] as number) > -1e-7, 'H is PSD');
      assert.ok(Math.abs(eig[0] as number) < 1e-7, 'the smallest eigenvalue of H is 0 (direction 1)');
    }
  });

  test('smallest eigenvalue of H off the 1 direction: secular equation = Jacobi, closed forms', () => {
    for (let s = 0; s < n; s++) {
      const pi = Array.from(t.probs.subarray(s * V, (s + 1) * V), Number);
      const H = pi.map((pi_i, i) => pi.map((pj, j) => (i === j ? pi_i : 0) - pi_i * pj));
      const eig = jacobiEigenvalues(H);
      const second = eig[1] as number;
      assert.ok(Math.abs((t.hMinEig[s] as number) - second) <= 1e-6 * Math.max(second, 1e-3), `sample ${s}: ${t.hMinEig[s]} vs ${second}`);
    }
    // V = 2: eigenvalues 0 and 2 π₁ π₂.
    assert.ok(Math.abs(hMinEigOrth([0.3, 0.7], 2) - 2 * 0.3 * 0.7) < 1e-12);
    // Uniform π: H = (1/V)(I − 11ᵀ/V), eigenvalue 1/V on 1⊥.
    assert.ok(Math.abs(hMinEigOrth([0.25, 0.25, 0.25, 0.25], 4) - 0.25) < 1e-12);
  });

  test('without labels there is no loss, correct or G; bad labels are rejected', () => {
    const u = outputTerms(logits, V);
    assert.equal(u.loss, undefined);
    assert.equal(u.gNorm, undefined);
    assert.throws(() => outputTerms(logits, V, labels.map(() => V)), /not in \[0, 7\)/);
    assert.throws(() => outputTerms(logits.subarray(1), V), /not a multiple/);
  });
});
