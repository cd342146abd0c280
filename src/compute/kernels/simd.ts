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
import { GELU_WASM_BASE64 } from './gelu-wasm.js';
import { LAYERNORM_WASM_BASE64 } from './layernorm-wasm.js';

// The global WebAssembly API (lib "dom" is not in this project's tsconfig).
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
};

type AttentionFn = (x: number, n: number, t: number, h: number, dh: number, scale: number, out: number, p: number) => void;

type LayerNormFn = (x: number, rows: number, c: number, gamma: number, beta: number, flags: number, eps: number, out: number, xhat: number, rstd: number) => void;

const ATTENTION = 'TangentAttention';
const LAYER_NORM = 'TangentLayerNorm';
const GELU = 'TangentGelu';

/** A kernel module's exports, instantiated on the tfjs wasm backend's own memory. */
function instantiate(backend: BackendWasm, base64: string): Record<string, unknown> {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  invariant(memory instanceof WebAssembly.Memory, 'tfjs wasm memory not found');
  const module = new WebAssembly.Module(Buffer.from(base64, 'base64'));
  return new WebAssembly.Instance(module, { env: { memory } }).exports;
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
  attentionFn ??= instantiate(backend, ATTENTION_WASM_BASE64)['attention'] as AttentionFn;
  // Offsets only (no views): an allocation may grow, and so detach, the heap's buffer.
  attentionFn(backend.getMemoryOffset(x.dataId), n, t, heads, dh, 1 / Math.sqrt(dh), backend.getMemoryOffset(out.dataId), backend.getMemoryOffset(p.dataId));
  return [out, p];
}

let layerNormFn: LayerNormFn | undefined;

function layerNormKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo[] {
  const backend = args.backend as BackendWasm;
  const { x, gamma, beta } = args.inputs;
  invariant(x !== undefined && x.dtype === 'float32' && x.shape.length >= 1, `${LAYER_NORM} needs float32 x`);
  const c = x.shape[x.shape.length - 1] as number;
  for (const p of [gamma, beta]) invariant(p === undefined || (p.dtype === 'float32' && p.shape.length === 1 && p.shape[0] === c), `${LAYER_NORM}: γ and β are [${c}]`);
  const rows = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const epsilon = (args.attrs as { epsilon: number }).epsilon;
  const out = backend.makeOutput(x.shape, 'float32');
  const xhat = backend.makeOutput(x.shape, 'float32');
  const rstd = backend.makeOutput([...x.shape.slice(0, -1), 1], 'float32');
  layerNormFn ??= instantiate(backend, LAYERNORM_WASM_BASE64)['layernorm'] as LayerNormFn;
  const at = (t: tf.TensorInfo | undefined) => (t === undefined ? 0 : backend.getMemoryOffset(t.dataId));
  const flags = (gamma === undefined ? 0 : 1) | (beta === undefined ? 0 : 2);
  layerNormFn(at(x), rows, c, at(gamma), at(beta), flags, epsilon, at(out), at(xhat), at(rstd));
  return [out, xhat, rstd];
}

let geluFn: ((x: number, n: number, out: number) => void) | undefined;

function geluKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  invariant(x !== undefined && x.dtype === 'float32', `${GELU} needs float32 x`);
  const out = backend.makeOutput(x.shape, 'float32');
  geluFn ??= instantiate(backend, GELU_WASM_BASE64)['gelu'] as (x: number, n: number, out: number) => void;
  geluFn(backend.getMemoryOffset(x.dataId), x.shape.reduce((a, b) => a * b, 1), backend.getMemoryOffset(out.dataId));
  return out;
}

let registered = false;

/** Registers the SIMD kernels for the wasm backend (idempotent; `patchWasmKernels` calls it). */
export function registerSimdKernels(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: ATTENTION, backendName: 'wasm', kernelFunc: attentionKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: LAYER_NORM, backendName: 'wasm', kernelFunc: layerNormKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: GELU, backendName: 'wasm', kernelFunc: geluKernel as unknown as tf.KernelFunc });
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

/**
 * LayerNormalization over the last axis of x (wasm only, see `simdActive`): the output, the
 * normalised input x̂ (shaped like x) and 1/σ ([..., 1]).
 */
export function layerNormSimd(x: tf.Tensor, epsilon: number, gamma?: tf.Tensor, beta?: tf.Tensor): { out: tf.Tensor; xhat: tf.Tensor; rstd: tf.Tensor } {
  const inputs: tf.NamedTensorMap = { x };
  if (gamma !== undefined) inputs['gamma'] = gamma;
  if (beta !== undefined) inputs['beta'] = beta;
  const [out, xhat, rstd] = tf.engine().runKernel(LAYER_NORM, inputs, { epsilon } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor, tf.Tensor, tf.Tensor];
  return { out, xhat, rstd };
}

/** GELU, exact form (tf.layers' 'gelu'), elementwise (wasm only, see `simdActive`). */
export function geluSimd(x: tf.Tensor): tf.Tensor {
  return tf.engine().runKernel(GELU, { x }, {}) as tf.Tensor;
}
