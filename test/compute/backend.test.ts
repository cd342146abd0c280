/** Backend selection: what is chosen, what is reported, what fails and how. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKEND_PREFERENCES, backendInfo, createPool, initBackend, loadModel, selfKernel, serializeModel } from '../../src/compute/index.js';
import type { BackendPreference, BackendReport } from '../../src/compute/index.js';
import { probeAdapter } from '../../src/compute/webgpu.js';
import { realSeries, tinyTransformer } from './helpers.js';

describe('initBackend', () => {
  test('the wasm loader leaves no process-wide error listeners behind', async () => {
    // First in this file (each test file runs in its own process): the wasm module loads here.
    const before = process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection');
    await initBackend('wasm', () => {});
    assert.equal(process.listenerCount('uncaughtException') + process.listenerCount('unhandledRejection'), before);
  });

  test('cpu and wasm start and say so; the log entry names the backend and the GPU', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      const lines: BackendReport[] = [];
      const info = await initBackend(name, (l) => lines.push(l));
      assert.equal(info.name, name);
      assert.equal(info.gpu, false);
      assert.match(info.version, /^tfjs 4\.22\.0/);
      assert.equal(tf.getBackend(), name);
      assert.deepEqual(backendInfo(), info);
      assert.equal(lines.length, 1);
      assert.deepEqual(lines[0], { backend: name, gpu: false, version: info.version, skipped: [] });
    }
    assert.match((await initBackend('wasm', () => {})).version, /simd/);
  });

  test('auto prefers tfjs-node-gpu on CUDA, then a hardware WebGPU adapter, then tfjs-node, then wasm; tensorflow alone fails clearly where it is not installed', async () => {
    let tensorflow = true;
    try {
      await import(['@tensorflow', 'tfjs-node'].join('/'));
    } catch {
      tensorflow = false;
    }
    const probe = await probeAdapter();
    const auto = await initBackend('auto', () => {});
    if (tensorflow) {
      assert.ok(auto.name === 'tensorflow' || auto.name === 'webgpu');
    } else if ('adapter' in probe && !probe.adapter.software) {
      assert.equal(auto.name, 'webgpu');
      assert.equal(auto.gpu, true);
    } else {
      assert.equal(auto.name, 'wasm');
      // Skipped backends are named with a short reason, not an error's text.
      assert.deepEqual(auto.skipped, [
        { backend: 'tensorflow', reason: '@tensorflow/tfjs-node-gpu is not installed' },
        { backend: 'tensorflow', reason: '@tensorflow/tfjs-node is not installed' },
        {
          backend: 'webgpu',
          reason:
            'reason' in probe
              ? probe.reason
              : `only a software adapter (${probe.adapter.description || probe.adapter.device}): slower than wasm; TANGENT_BACKEND=webgpu takes it`,
        },
      ]);
      await assert.rejects(initBackend('tensorflow', () => {}), /no tfjs backend could start for TANGENT_BACKEND=tensorflow: .*tfjs-node/);
    }
    await assert.rejects(initBackend('gpu' as BackendPreference, () => {}), /TANGENT_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu/);
    assert.deepEqual([...BACKEND_PREFERENCES], ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
  });
});

describe('WebGPU', () => {
  test('TANGENT_BACKEND=webgpu takes any adapter (a software one too) and reports it; without one it fails with the reason', async () => {
    const probe = await probeAdapter();
    if ('reason' in probe) {
      await assert.rejects(initBackend('webgpu', () => {}), (e: Error) => e.message.includes(`webgpu: ${probe.reason}`));
      return;
    }
    const lines: BackendReport[] = [];
    const info = await initBackend('webgpu', (l) => lines.push(l));
    assert.equal(info.name, 'webgpu');
    assert.equal(tf.getBackend(), 'webgpu');
    assert.deepEqual(info.adapter, probe.adapter);
    assert.equal(info.gpu, !probe.adapter.software);
    assert.equal(typeof info.adapter?.vendor, 'string');
    assert.equal(typeof info.adapter?.architecture, 'string');
    // A chunk's tensors fit one storage binding, so none of them is larger than the adapter allows.
    assert.ok(info.memoryBudgetBytes <= probe.adapter.maxStorageBufferBindingSize && info.memoryBudgetBytes >= 64 * 2 ** 20);
    assert.deepEqual(lines, [{ backend: 'webgpu', gpu: info.gpu, version: info.version, adapter: info.adapter, skipped: [] }]);
    assert.match(info.version, /webgpu 4\.22\.0 on Dawn/);
  });

  test('a pool on webgpu runs one thread, reports the adapter and matches this thread; without an adapter it refuses to start, with the reason', async (t) => {
    const probe = await probeAdapter();
    if ('reason' in probe) {
      // No adapter here: the pool refuses to start, with the reason, rather than fall back silently.
      await assert.rejects(createPool({ backend: 'webgpu', log: () => {} }), (e: Error) => e.message.includes(probe.reason));
      return;
    }
    const reports: BackendReport[] = [];
    const pool = await createPool({ backend: 'webgpu', log: (r) => reports.push(r) });
    t.after(() => pool.close());
    assert.equal(pool.threads, 1);
    assert.equal(pool.backend.name, 'webgpu');
    assert.deepEqual(pool.backend.adapter, probe.adapter);
    assert.equal(reports[0]?.threads, 1);
    await initBackend('webgpu', () => {});
    const model = await serializeModel(tinyTransformer());
    const x = await realSeries(3, 24, 2);
    const there = await pool.load(model);
    const here = await loadModel(model);
    const a = await pool.selfKernel(there, x);
    const b = await selfKernel(here, x);
    assert.deepEqual(a.K, b.K, 'same backend, same numbers');
    here.dispose();
  });
});
