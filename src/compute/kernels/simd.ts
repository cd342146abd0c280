/**
 * The engine's own SIMD kernels for tfjs-backend-wasm (hand-written WebAssembly, see each .wat's
 * header for why tfjs's own path is slow there), registered as tfjs kernels of the `wasm`
 * backend that read and write tensors in place in its heap.
 *
 * They run only while the active backend is `wasm` (`simdActive`); every other backend keeps the
 * plain tfjs formulation, which the kernels equal up to float32 rounding.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { invariant } from '../invariant.js';
import { ATTENTION_WASM_BASE64 } from './attention-wasm.js';

// The global WebAssembly API (lib "dom" is not in this project's tsconfig).
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
};

type AttentionFn = (x: number, n: number, t: number, h: number, dh: number, scale: number, out: number, p: number) => void;

const ATTENTION = 'TangentAttention';

function instantiate(backend: BackendWasm, base64: string, name: string): unknown {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  invariant(memory instanceof WebAssembly.Memory, 'tfjs wasm memory not found');
  const module = new WebAssembly.Module(Buffer.from(base64, 'base64'));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports[name];
}

let attentionFn: AttentionFn | undefined;

function attentionKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  invariant(x !== undefined && x.shape.length === 3 && x.dtype === 'float32', `${ATTENTION} needs float32 x [n, T, 3d]`);
  const heads = (args.attrs as { heads: number }).heads;
  const [n, t, d3] = x.shape as [number, number, number];
  const d = d3 / 3;
  const dh = d / heads;
  invariant(Number.isInteger(dh), `${ATTENTION}: width ${d} is not divisible by ${heads} heads`);
  const out = backend.makeOutput([n, t, d], 'float32');
  const p = backend.makeOutput([n * heads, t, t], 'float32');
  attentionFn ??= instantiate(backend, ATTENTION_WASM_BASE64, 'attention') as AttentionFn;
  // Offsets only (no views): an allocation may grow, and so detach, the heap's buffer.
  attentionFn(backend.getMemoryOffset(x.dataId), n, t, heads, dh, 1 / Math.sqrt(dh), backend.getMemoryOffset(out.dataId), backend.getMemoryOffset(p.dataId));
  return [out, p];
}

let registered = false;

/** Registers the SIMD kernels for the wasm backend (idempotent; `patchWasmKernels` calls it). */
export function registerSimdKernels(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: ATTENTION, backendName: 'wasm', kernelFunc: attentionKernel as unknown as tf.KernelFunc });
}

/** Whether the SIMD kernels serve the current backend (wasm only). */
export function simdActive(): boolean {
  return registered && tf.getBackend() === 'wasm';
}

/**
 * The weightless core of multi-head self-attention on packed x [n, T, 3d] (wasm only, see
 * `simdActive`): the merged heads' output [n, T, d] and the probabilities [n·h, T, T].
 */
export function attentionSimd(x: tf.Tensor3D, heads: number): { out: tf.Tensor3D; p: tf.Tensor3D } {
  const [out, p] = tf.engine().runKernel(ATTENTION, { x }, { heads } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor3D, tf.Tensor3D];
  return { out, p };
}
