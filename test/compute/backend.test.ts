/** Backend selection: what is chosen, what is reported, what fails and how. */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BACKEND_PREFERENCES, backendInfo, initBackend } from '../../src/compute/index.js';
import type { BackendPreference, BackendReport } from '../../src/compute/index.js';

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

  test('auto prefers tfjs-node, then wasm; tensorflow alone fails clearly where it is not installed', async () => {
    let tensorflow = true;
    try {
      await import(['@tensorflow', 'tfjs-node'].join('/'));
    } catch {
      tensorflow = false;
    }
    const auto = await initBackend('auto', () => {});
    if (tensorflow) {
      assert.equal(auto.name, 'tensorflow');
    } else {
      assert.equal(auto.name, 'wasm');
      // Skipped backends are named with a short reason, not an error's text.
      assert.deepEqual(auto.skipped, [
        { backend: 'tensorflow', reason: '@tensorflow/tfjs-node-gpu is not installed' },
        { backend: 'tensorflow', reason: '@tensorflow/tfjs-node is not installed' },
      ]);
      await assert.rejects(initBackend('tensorflow', () => {}), /no tfjs backend could start for TANGENT_BACKEND=tensorflow: .*tfjs-node/);
    }
    await assert.rejects(initBackend('gpu' as BackendPreference, () => {}), /TANGENT_BACKEND must be one of auto, tensorflow, wasm, cpu/);
    assert.deepEqual([...BACKEND_PREFERENCES], ['auto', 'tensorflow', 'wasm', 'cpu']);
  });
});
