/**
 * Per-sample Gram matrices K_s = R_s R_sᵀ for R [n, V, P] → [n, V, V], the last step of every
 * self-kernel. On wasm it runs a small SIMD kernel (kernels/gram.wat) that reads the tensors in
 * place in the tfjs heap, registered as the tfjs kernel `TangentGram`: XNNPACK re-packs the
 * [P, V] operand of each product, which costs more than the product for long rows. Elsewhere it
 * is a batched matMul.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { invariant } from './invariant.js';
import { GRAM_WASM_BASE64 } from './kernels/gram-wasm.js';

type GramFn = (x: number, n: number, v: number, p: number, out: number) => void;

// The global WebAssembly API (lib "dom" is not in this project's tsconfig).
declare const WebAssembly: {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
};

const KERNEL = 'TangentGram';
let gramFn: GramFn | undefined;

function instantiate(backend: BackendWasm): GramFn {
  const memory = (backend.wasm as unknown as { asm?: { memory?: object } }).asm?.memory;
  invariant(memory instanceof WebAssembly.Memory, 'tfjs wasm memory not found');
  const module = new WebAssembly.Module(Buffer.from(GRAM_WASM_BASE64, 'base64'));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports['gram'] as GramFn;
}

function gramKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  invariant(x !== undefined && x.shape.length === 3 && x.dtype === 'float32', 'TangentGram needs float32 x [n, V, P]');
  const [n, v, p] = x.shape as [number, number, number];
  const out = backend.makeOutput([n, v, v], 'float32');
  gramFn ??= instantiate(backend);
  gramFn(backend.getMemoryOffset(x.dataId), n, v, p, backend.getMemoryOffset(out.dataId));
  return out;
}

let registered = false;

/** Registers `TangentGram` for the wasm backend (idempotent; initBackend calls it). */
export function registerGramKernel(): void {
  if (registered) return;
  registered = true;
  tf.registerKernel({ kernelName: KERNEL, backendName: 'wasm', kernelFunc: gramKernel as tf.KernelFunc });
}

/** R Rᵀ per sample: [n, V, P] → [n, V, V]. */
export function gram(rows: tf.Tensor): tf.Tensor3D {
  if (tf.getBackend() === 'wasm' && registered) {
    return tf.engine().runKernel(KERNEL, { x: rows }, {}) as tf.Tensor3D;
  }
  return tf.matMul(rows as tf.Tensor3D, rows as tf.Tensor3D, false, true);
}
