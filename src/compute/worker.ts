/**
 * One compute thread of a `ComputePool`: its own tfjs instance and backend, its own copies of the
 * models, and the engine's functions behind a message protocol. Started by pool.ts only.
 */
import { parentPort } from 'node:worker_threads';
import { initBackend } from './backend.js';
import type { BackendPreference } from './backend.js';
import { loadModel, loadWeights } from './checkpoint.js';
import type { ModelSource, StoredWeights } from './checkpoint.js';
import { crossKernel } from './cross.js';
import { jacobian, projectedJacobian, selfKernel } from './kernel.js';
import type { EngineModel } from './model.js';
import { subsetsOf } from './plan.js';
import { logitsOf } from './predict.js';
import { logitsFromTrunk, trunkFeatures } from './trunk.js';

export type Request =
  | { id: number; op: 'init'; backend: BackendPreference }
  | { id: number; op: 'load'; key: number; source: ModelSource }
  | { id: number; op: 'loadWeights'; key: number; weights: StoredWeights; partial: boolean }
  | { id: number; op: 'unload'; key: number }
  | { id: number; op: 'selfKernel' | 'jacobian' | 'projectedJacobian'; key: number; x: Float32Array; opts: Record<string, unknown> }
  | { id: number; op: 'logits'; key: number; x: Float32Array }
  | { id: number; op: 'trunkFeatures'; key: number; x: Float32Array; opts: Record<string, unknown> }
  | { id: number; op: 'logitsFromTrunk'; key: number; x: Float32Array; opts: { subset?: unknown; width: number } }
  | { id: number; op: 'crossKernel'; key: number; xo: Float32Array; xu: Float32Array; opts: Record<string, unknown> };

export type Response = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string; stack?: string };

const models = new Map<number, EngineModel>();

function model(key: number): EngineModel {
  const m = models.get(key);
  if (m === undefined) throw new Error(`model ${key} is not loaded in this worker`);
  return m;
}

/** Typed arrays anywhere one level down in a result, to transfer rather than copy. */
function transferables(value: unknown): ArrayBuffer[] {
  if (value === null || typeof value !== 'object') return [];
  return Object.values(value).filter((v): v is Float32Array => ArrayBuffer.isView(v)).map((v) => v.buffer as ArrayBuffer);
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'init':
      return initBackend(req.backend, () => {});
    case 'load': {
      const m = await loadModel(req.source);
      models.set(req.key, m);
      return { classes: m.classes, inputShape: m.inputShape, parameterCount: m.parameterCount, generic: m.generic, subsets: subsetsOf(m.graph) };
    }
    case 'loadWeights':
      loadWeights(model(req.key), req.weights, req.partial);
      return null;
    case 'unload':
      models.get(req.key)?.dispose();
      models.delete(req.key);
      return null;
    case 'logits':
      return { logits: await logitsOf(model(req.key), req.x) };
    case 'trunkFeatures':
      return trunkFeatures(model(req.key), req.x, req.opts);
    case 'logitsFromTrunk':
      return { logits: await logitsFromTrunk(model(req.key), req.x, req.opts as Parameters<typeof logitsFromTrunk>[2]) };
    case 'selfKernel':
      return selfKernel(model(req.key), req.x, req.opts);
    case 'jacobian':
      return jacobian(model(req.key), req.x, req.opts);
    case 'projectedJacobian':
      return projectedJacobian(model(req.key), req.x, req.opts as unknown as Parameters<typeof projectedJacobian>[2]);
    case 'crossKernel':
      return crossKernel(model(req.key), req.xo, req.xu, req.opts);
  }
}

const port = parentPort;
if (port === null) throw new Error('worker.ts runs only as a worker thread of a ComputePool');
// One request at a time, in order: tfjs work is synchronous, so this is what the thread can do.
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: Request) => {
  queue = queue.then(async () => {
    try {
      const value = await handle(req);
      port.postMessage({ id: req.id, ok: true, value } satisfies Response, transferables(value));
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id: req.id, ok: false, message: e.message, stack: e.stack } satisfies Response);
    }
  });
});
