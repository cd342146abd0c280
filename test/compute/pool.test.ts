/** The worker-thread pool gives the numbers of the engine in this thread. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPool, crossKernel, firstOrder, jacobian, loadModel, outputs, projectedJacobian, selfKernel, serializeModel } from '../../src/compute/index.js';
import type { BackendReport, ComputePool, EngineModel, PoolModel } from '../../src/compute/index.js';
import { assertClose, realSeries, tinyTransformer, useBackend } from './helpers.js';

describe('ComputePool', () => {
  let pool: ComputePool;
  let here: EngineModel;
  let there: PoolModel;

  before(async () => {
    await useBackend('wasm');
    const stored = await serializeModel(tinyTransformer());
    here = await loadModel(stored);
    const lines: BackendReport[] = [];
    pool = await createPool({ threads: 2, backend: 'wasm', log: (l) => lines.push(l) });
    assert.deepEqual(lines.length, 1);
    assert.deepEqual({ ...lines[0], version: undefined }, { backend: 'wasm', gpu: false, version: undefined, threads: 2, skipped: [] });
    there = await pool.load(stored);
  });

  after(async () => {
    await pool?.close();
    here?.dispose();
  });

  test('reports its backend and the model', () => {
    assert.equal(pool.threads, 2);
    assert.equal(pool.backend.name, 'wasm');
    assert.equal(there.classes, here.classes);
    assert.equal(there.parameterCount, here.parameterCount);
    assert.deepEqual(there.inputShape, here.inputShape);
  });

  test('self-kernel, J, cross kernel, projection and first order match this thread', async () => {
    const x = await realSeries(11, 24, 2);
    const xu = x.subarray(0, 3 * 48);
    let progress = 0;
    const a = await pool.selfKernel(there, x, { chunkSize: 2, onProgress: (done) => (progress = done) });
    const b = await selfKernel(here, x, { chunkSize: 2 });
    assert.equal(progress, 11);
    assertClose(a.K as Float32Array, b.K as Float32Array, 0, 'K');
    assertClose(a.kNorm, b.kNorm, 0, 'kNorm');
    assertClose(await pool.logitsOf(there, x), b.logits, 0, 'forward-only logits');
    assertClose((await pool.outputs(there, x)).hTrace, (await outputs(here, x)).hTrace, 0, 'Tr H');
    const terms = await pool.computeTerms(there, x, Array.from({ length: 11 }, (_, i) => i % 3));
    assertClose(terms.kTrace, b.kTrace, 0, 'kTrace');
    assert.equal(terms.loss?.length, 11);
    assertClose((await pool.jacobian(there, x)).J, (await jacobian(here, x)).J, 0, 'J');
    const ca = await pool.crossKernel(there, x, xu);
    const cb = await crossKernel(here, x, xu);
    assertClose(ca.K as Float32Array, cb.K as Float32Array, 1e-6, 'cross K');
    assertClose(ca.kCross, cb.kCross, 1e-6, 'kCross');
    const pa = await pool.projectedJacobian(there, x, { projection: { dim: 32, seed: 1 } });
    const pb = await projectedJacobian(here, x, { projection: { dim: 32, seed: 1 } });
    assertClose(pa.J, pb.J, 0, 'projected J');
    const input = { xo: x, xu, yu: [0, 1, 2], eta: 0.01 };
    assertClose((await pool.firstOrder(there, input)).deltaLogProbs, (await firstOrder(here, input)).deltaLogProbs, 1e-6, 'first order');
  });

  test('errors come back as rejections; an aborted call stops', async () => {
    const x = await realSeries(4, 24, 2);
    await assert.rejects(pool.selfKernel(there, x, { subset: ['nope'] }), /'nope' is not a layer with trainable weights/);
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(pool.selfKernel(there, x, { signal: ctl.signal }), /abort/i);
    // Still usable afterwards.
    assert.equal((await pool.selfKernel(there, x)).n, 4);
  });
});
