/** K(x, x), K(x_o, x_u), kNorm, kTrace, kCross and the projection: closed forms and identities. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crossKernel, jacobian, kCross, prepareModel, projectedJacobian, selfKernel, transformer } from '../../src/compute/index.js';
import { BACKENDS, RUNNING, skipReason, assertClose, jacobiEigenvalues, maxRel, noLeak, realSeries, tinyCnn, tinyTransformer, useBackend } from './helpers.js';

/** φ: the features the head sees (the GAP output of the tiny CNN). */
async function features(model: tf.LayersModel, x: Float32Array, n: number): Promise<Float32Array> {
  const sub = tf.model({ inputs: model.inputs, outputs: model.getLayer('gap').output as tf.SymbolicTensor });
  const [, length, channels] = model.inputs[0]?.shape as [null, number, number];
  const phi = tf.tidy(() => sub.predict(tf.tensor3d(x, [n, length, channels])) as tf.Tensor);
  const values = (await phi.data()) as Float32Array; // a GPU backend reads asynchronously only
  phi.dispose();
  return values;
}

for (const backend of BACKENDS) {
  describe(`kernels on ${backend}`, { skip: skipReason(backend) }, () => {
    test('a linear head on fixed features has K(x, x′) = (φ·φ′ + 1)·I', async () => {
      await useBackend(backend);
      const model = tinyCnn();
      const m = prepareModel(model);
      const n = 4;
      const x = await realSeries(n, 24, 2);
      const V = m.classes;
      const phi = await features(model, x, n);
      const d = phi.length / n;
      const dot = (a: number, b: number) => {
        let s = 0;
        for (let i = 0; i < d; i++) s += (phi[a * d + i] as number) * (phi[b * d + i] as number);
        return s;
      };
      const self = await noLeak(() => selfKernel(m, x, { subset: 'head' }));
      const cross = await noLeak(() => crossKernel(m, x, x, { subset: ['head'] }));
      for (let a = 0; a < n; a++) {
        for (let i = 0; i < V; i++) {
          for (let j = 0; j < V; j++) {
            const want = i === j ? dot(a, a) + 1 : 0;
            assert.ok(Math.abs((self.K?.[(a * V + i) * V + j] as number) - want) < 1e-5 * (dot(a, a) + 1));
          }
        }
        for (let b = 0; b < n; b++) {
          const block = cross.K?.subarray((a * n + b) * V * V, (a * n + b + 1) * V * V) as Float32Array;
          for (let i = 0; i < V; i++) {
            for (let j = 0; j < V; j++) {
              const want = i === j ? dot(a, b) + 1 : 0;
              assert.ok(Math.abs((block[i * V + j] as number) - want) < 1e-5 * (Math.abs(dot(a, b)) + 1));
            }
          }
        }
      }
      assert.equal(self.info.parameters, 3 * 3 + 3);
      m.dispose();
    });

    for (const [name, build] of [['cnn', tinyCnn], ['transformer', tinyTransformer]] as const) {
      test(`${name}: K symmetric and PSD; self-K = diagonal of cross-K; kNorm, kTrace and kCross`, async () => {
        await useBackend(backend);
        const m = prepareModel(build());
        const n = 5;
        const V = m.classes;
        const x = await realSeries(n, 24, 2);
        const self = await noLeak(() => selfKernel(m, x));
        const cross = await noLeak(() => crossKernel(m, x, x));
        const K = cross.K as Float32Array;
        // The whole [nV × nV] kernel of the set with itself: symmetric and PSD.
        const big = Array.from({ length: n * V }, (_, r) =>
          Array.from({ length: n * V }, (_, c) => {
            const [a, i, b, j] = [Math.floor(r / V), r % V, Math.floor(c / V), c % V];
            return K[((a * n + b) * V + i) * V + j] as number;
          }),
        );
        let scale = 0;
        for (let r = 0; r < n * V; r++) {
          for (let c = 0; c < n * V; c++) {
            scale = Math.max(scale, Math.abs(big[r]![c] as number));
            assert.ok(Math.abs((big[r]![c] as number) - (big[c]![r] as number)) <= 1e-5 * Math.max(1, Math.abs(big[r]![c] as number)), 'K(x_o, x_u) = K(x_u, x_o)ᵀ');
          }
        }
        const eig = jacobiEigenvalues(big);
        assert.ok((eig[0] as number) > -1e-5 * scale, `K is PSD (smallest eigenvalue ${eig[0]})`);
        const J = await noLeak(() => jacobian(m, x));
        const P = J.params.reduce((a, p) => a + p.size, 0);
        for (let a = 0; a < n; a++) {
          const own = self.K?.subarray(a * V * V, (a + 1) * V * V) as Float32Array;
          assertClose(own, K.subarray((a * n + a) * V * V, (a * n + a + 1) * V * V), 1e-5, 'self-K = diagonal block of cross-K');
          let fro = 0;
          let tr = 0;
          for (let i = 0; i < V * V; i++) fro += (own[i] as number) ** 2;
          for (let i = 0; i < V; i++) tr += own[i * V + i] as number;
          let jj = 0;
          for (let i = a * V * P; i < (a + 1) * V * P; i++) jj += (J.J[i] as number) ** 2;
          assert.ok(Math.abs((self.kNorm[a] as number) - Math.sqrt(fro)) < 1e-5 * Math.sqrt(fro));
          assert.ok(Math.abs((self.kTrace[a] as number) - tr) < 1e-5 * tr);
          assert.ok(Math.abs(tr - jj) < 1e-5 * jj, 'Tr K = ‖J‖_F²');
        }
        // kCross(x_u; X) = mean over x_o of ‖K(x_o, x_u)‖_F.
        const kc = await noLeak(() => kCross(m, x, x));
        for (let u = 0; u < n; u++) {
          let sum = 0;
          for (let o = 0; o < n; o++) {
            let f = 0;
            for (let i = 0; i < V * V; i++) f += (K[(o * n + u) * V * V + i] as number) ** 2;
            sum += Math.sqrt(f);
          }
          assert.ok(Math.abs((kc.kCross[u] as number) - sum / n) < 1e-5 * (sum / n));
        }
        m.dispose();
      });
    }

    test('a cross kernel over more parameters than one product slice takes: its diagonal is self-K', async () => {
      await useBackend(backend);
      // dim 32: the dense rows span several slices of cross.ts's ROWS_SLICE columns, summed slice by slice.
      const m = prepareModel(transformer({ length: 24, channels: 2, classes: 3, patch: 4, dim: 32, depth: 1, heads: 2, mlpDim: 48, seed: 4 }));
      assert.ok(m.parameterCount > 3 * 1024, `${m.parameterCount} parameters`);
      const n = 3;
      const V = m.classes;
      const x = await realSeries(n, 24, 2);
      const self = await noLeak(() => selfKernel(m, x));
      const cross = await noLeak(() => crossKernel(m, x, x));
      for (let a = 0; a < n; a++) {
        const own = self.K?.subarray(a * V * V, (a + 1) * V * V) as Float32Array;
        assertClose(own, (cross.K as Float32Array).subarray((a * n + a) * V * V, (a * n + a + 1) * V * V), 1e-5, 'self-K = diagonal block of cross-K');
      }
      m.dispose();
    });

    test('K over all weights is the sum of K over each layer; chunking changes nothing', async () => {
      await useBackend(backend);
      const m = prepareModel(tinyTransformer());
      const x = await realSeries(3, 24, 2);
      const all = await noLeak(() => selfKernel(m, x));
      const parts = new Float64Array(all.K?.length ?? 0);
      for (const layer of all.info.subset) {
        const k = await noLeak(() => selfKernel(m, x, { subset: [layer] }));
        k.K?.forEach((v, i) => (parts[i] = (parts[i] as number) + v));
      }
      assertClose(all.K as Float32Array, parts, 1e-5, 'Σ over layers');
      const one = await noLeak(() => selfKernel(m, x, { chunkSize: 1 }));
      const tight = await noLeak(() => selfKernel(m, x, { memoryBudgetBytes: 1 }));
      assert.equal(tight.info.chunkSize, 1);
      assertClose(one.K as Float32Array, all.K as Float32Array, 1e-6, 'chunk size 1');
      assertClose(tight.K as Float32Array, all.K as Float32Array, 1e-6, 'memory budget');
      const crossSmall = await noLeak(() => crossKernel(m, x, x.subarray(0, 2 * 24 * 2), { memoryBudgetBytes: 1, chunkSize: 1 }));
      const crossBig = await noLeak(() => crossKernel(m, x, x.subarray(0, 2 * 24 * 2)));
      assertClose(crossSmall.K as Float32Array, crossBig.K as Float32Array, 1e-6, 'cross kernel in u-blocks of one sample');
      await assert.rejects(selfKernel(m, x, { subset: ['nope'] }), /'nope' is not a layer with trainable weights/);
      await assert.rejects(selfKernel(m, x.subarray(1)), /not a whole number/);
      m.dispose();
    });

    test('projection: seeded, exact when d ≥ P, error reported and within the bound', async () => {
      await useBackend(backend);
      const m = prepareModel(tinyCnn());
      const n = 6;
      const x = await realSeries(n, 24, 2);
      const exact = await noLeak(() => crossKernel(m, x, x));
      const full = await noLeak(() => crossKernel(m, x, x, { projection: { dim: m.parameterCount, seed: 3 } }));
      assertClose(full.K as Float32Array, exact.K as Float32Array, 1e-5, 'd = P is a signed permutation');
      assert.ok((full.projection?.selfKRelError.max as number) < 1e-5);
      const a = await noLeak(() => crossKernel(m, x, x, { projection: { dim: 64, seed: 9 } }));
      const b = await noLeak(() => crossKernel(m, x, x, { projection: { dim: 64, seed: 9 } }));
      assert.deepEqual(a.K, b.K, 'same seed, same kernel');
      const c = await noLeak(() => crossKernel(m, x, x, { projection: { dim: 64, seed: 10 } }));
      assert.notDeepEqual(a.K, c.K);
      const err = a.projection?.selfKRelError as { mean: number; max: number };
      assert.ok(err.max > 0 && err.mean <= err.max);
      // Each entry's error is at most a few standard deviations √(2/d)·‖J_i‖‖J_j‖; over a
      // self-kernel block that bounds the relative Frobenius error by ~ V·√(2/d).
      assert.ok(err.max < 3 * m.classes * (a.projection?.entryStdBound as number), `self-K error ${err.max}`);
      assert.ok(maxRel(a.K as Float32Array, exact.K as Float32Array) < 1, 'a projected kernel is an estimate of the same kernel');
      // The projected J gives the same kernel as the projected cross kernel.
      const pj = await noLeak(() => projectedJacobian(m, x, { projection: { dim: 64, seed: 9 } }));
      const V = m.classes;
      const d = 64;
      let worst = 0;
      for (let o = 0; o < n; o++) {
        for (let u = 0; u < n; u++) {
          for (let i = 0; i < V; i++) {
            for (let j = 0; j < V; j++) {
              let s = 0;
              for (let k = 0; k < d; k++) s += (pj.J[(o * V + i) * d + k] as number) * (pj.J[(u * V + j) * d + k] as number);
              worst = Math.max(worst, Math.abs(s - (a.K?.[((o * n + u) * V + i) * V + j] as number)));
            }
          }
        }
      }
      assert.ok(worst < 1e-4, `projected J·Jᵀ vs projected cross kernel: ${worst}`);
      m.dispose();
    });
  });
}

describe('backends agree', () => {
  for (const [name, build] of [['cnn', tinyCnn], ['transformer', tinyTransformer]] as const) {
    test(`${name}: K on wasm and webgpu = K on cpu within float32 tolerance`, async () => {
      const x = await realSeries(4, 24, 2);
      const out = new Map<string, Float32Array>();
      for (const backend of ['cpu', ...RUNNING.filter((b) => b !== 'cpu')] as const) {
        await useBackend(backend);
        const m = prepareModel(build());
        out.set(backend, (await noLeak(() => selfKernel(m, x))).K as Float32Array);
        m.dispose();
      }
      for (const [backend, K] of out) assertClose(K, out.get('cpu') as Float32Array, 1e-5, `${backend} vs cpu`);
    });
  }
});
