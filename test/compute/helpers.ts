/**
 * Shared pieces of the compute tests: the backends every numerical check runs on, a leak check,
 * closeness measures, tiny models that cover every op of the fast path, and real inputs.
 */
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { pack, ucrSeries } from '../../bench/ucr.js';
import { cnn1d, initBackend, transformer } from '../../src/compute/index.js';
import { probeAdapter } from '../../src/compute/webgpu.js';
import { keptTransposedKernels } from '../../src/compute/ops/transposed-kernels.js';

/**
 * Every backend of a machine without tfjs-node: cpu, wasm, and webgpu where Dawn finds an adapter
 * (software ones included: CI runs it on Mesa's lavapipe). `TANGENT_TEST_BACKENDS=webgpu,wasm`
 * narrows the list.
 */
export const BACKENDS = ['cpu', 'wasm', 'webgpu'] as const;
export type TestBackend = (typeof BACKENDS)[number];

const probe = await probeAdapter();
const only = process.env['TANGENT_TEST_BACKENDS']?.split(',').map((s) => s.trim()).filter((s) => s !== '');

/** Why the tests of a backend are skipped here (for `describe`'s `skip`), or false when they run. */
export function skipReason(name: TestBackend): string | false {
  if (only !== undefined && only.length > 0 && !only.includes(name)) return `TANGENT_TEST_BACKENDS=${only.join(',')}`;
  if (name === 'webgpu' && 'reason' in probe) return `webgpu: ${probe.reason}`;
  return false;
}

/** The backends whose tests run here. */
export const RUNNING = BACKENDS.filter((b) => skipReason(b) === false);

export async function useBackend(name: TestBackend): Promise<void> {
  await initBackend(name, () => {});
}

/**
 * Runs f and fails if the number of live tensors changed. The Wᵀ a backward pass keeps for a model
 * (src/compute/ops/transposed-kernels.ts, released with the model) count as the model's, not as a leak.
 */
export async function noLeak<T>(f: () => Promise<T> | T): Promise<T> {
  const live = () => tf.memory().numTensors - keptTransposedKernels();
  const before = live();
  const out = await f();
  assert.equal(live(), before, 'live tensors changed across a public call');
  return out;
}

/** max |a − b| / max |b|. */
export function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    m = Math.max(m, Math.abs(b[i] as number));
  }
  return d / m;
}

export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  const r = maxRel(a, b);
  assert.ok(r <= tol, `${what}: max relative difference ${r.toExponential(2)} > ${tol.toExponential(1)}`);
}

/** Real inputs: GunPoint (train) resampled to `length` steps and repeated over `channels`-wise copies. */
export async function realSeries(n: number, length: number, channels: number): Promise<Float32Array> {
  const d = await ucrSeries('GunPoint', 'TRAIN');
  const one = pack(d, n, length, 1);
  if (channels === 1) return one;
  const x = new Float32Array(n * length * channels);
  for (let i = 0; i < n * length; i++) {
    for (let c = 0; c < channels; c++) x[i * channels + c] = (one[i] as number) * (1 + 0.3 * c) + 0.1 * c;
  }
  return x;
}

/** A tiny 1D-CNN of the reference family (P = 158). */
export function tinyCnn(seed = 1): tf.LayersModel {
  return cnn1d({ length: 24, channels: 2, classes: 3, filters: [4, 5, 3], kernelSizes: [3, 4, 2], pool: 2, seed });
}

/** A tiny transformer of the reference family (P = 671). */
export function tinyTransformer(seed = 1): tf.LayersModel {
  return transformer({ length: 24, channels: 2, classes: 3, patch: 4, dim: 8, depth: 1, heads: 2, mlpDim: 12, seed });
}

const init = (seed: number) => tf.initializers.glorotUniform({ seed });
const bias = (seed: number) => tf.initializers.randomUniform({ minval: -0.3, maxval: 0.3, seed });

/**
 * Every other op of the fast path in one graph: same and strided valid convolutions, GELU,
 * tanh and sigmoid activations, BatchNormalization (inference), residual Add,
 * LayerNormalization, Concatenate, average pooling,
 * Flatten, a Dense on flat features, Dropout and a softmax head (the engine uses its logits).
 */
export function mixedModel(seed = 3): tf.LayersModel {
  const input = tf.input({ shape: [12, 2], name: 'input' });
  const c1 = tf.layers.conv1d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(seed), biasInitializer: bias(seed + 1), name: 'c1' }).apply(input) as tf.SymbolicTensor;
  const p0 = tf.layers.maxPooling1d({ poolSize: 2, name: 'p1' }).apply(c1) as tf.SymbolicTensor; // [6, 4]
  const p1 = tf.layers
    .batchNormalization({
      name: 'bn',
      gammaInitializer: bias(seed + 20),
      betaInitializer: bias(seed + 21),
      movingMeanInitializer: bias(seed + 22),
      movingVarianceInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 2, seed: seed + 23 }),
    })
    .apply(p0) as tf.SymbolicTensor;
  const c2 = tf.layers.conv1d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'gelu', kernelInitializer: init(seed + 2), biasInitializer: bias(seed + 3), name: 'c2' }).apply(p1) as tf.SymbolicTensor;
  const a = tf.layers.add({ name: 'res' }).apply([p1, c2]) as tf.SymbolicTensor;
  const c3 = tf.layers.conv1d({ filters: 3, kernelSize: 2, strides: 2, padding: 'valid', activation: 'tanh', kernelInitializer: init(seed + 4), biasInitializer: bias(seed + 5), name: 'c3' }).apply(a) as tf.SymbolicTensor; // [3, 3]
  const ln = tf.layers.layerNormalization({ name: 'ln', gammaInitializer: bias(seed + 6), betaInitializer: bias(seed + 7) }).apply(c3) as tf.SymbolicTensor;
  const side = tf.layers.dense({ units: 2, activation: 'sigmoid', kernelInitializer: init(seed + 8), biasInitializer: bias(seed + 9), name: 'side' }).apply(ln) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([ln, side]) as tf.SymbolicTensor; // [3, 5]
  const avg = tf.layers.averagePooling1d({ poolSize: 1, name: 'avg' }).apply(cat) as tf.SymbolicTensor;
  const act = tf.layers.activation({ activation: 'elu', name: 'elu' }).apply(avg) as tf.SymbolicTensor;
  const flat = tf.layers.flatten({ name: 'flat' }).apply(act) as tf.SymbolicTensor; // [15]
  const h = tf.layers.dense({ units: 6, activation: 'swish', kernelInitializer: init(seed + 10), biasInitializer: bias(seed + 11), name: 'hidden' }).apply(flat) as tf.SymbolicTensor;
  const d = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: init(seed + 12), biasInitializer: bias(seed + 13), name: 'head' }).apply(d) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'mixed' });
}

/**
 * Max pooling of windows whose values are all negative (a linear Conv1D with a negative bias),
 * then global max pooling, BatchNormalization and a linear head: the case tfjs-backend-wasm's
 * MaxPoolGrad gets wrong (and a separable signal through max pooling and BatchNormalization).
 */
export function negativePoolModel(seed = 5): tf.LayersModel {
  const input = tf.input({ shape: [8, 1], name: 'input' });
  const c = tf.layers.conv1d({ filters: 3, kernelSize: 2, padding: 'same', kernelInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed }), biasInitializer: tf.initializers.constant({ value: -5 }), name: 'c' }).apply(input) as tf.SymbolicTensor;
  const p = tf.layers.maxPooling1d({ poolSize: 2, name: 'pool' }).apply(c) as tf.SymbolicTensor;
  const g = tf.layers.globalMaxPooling1d({ name: 'gmp' }).apply(p) as tf.SymbolicTensor;
  const b = tf.layers.batchNormalization({ name: 'bn', gammaInitializer: tf.initializers.constant({ value: 1.5 }), movingVarianceInitializer: tf.initializers.constant({ value: 0.8 }) }).apply(g) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 2, kernelInitializer: init(seed + 1), name: 'head' }).apply(b) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'negpool' });
}

/** Symmetric eigenvalues by cyclic Jacobi rotations, float64. */
export function jacobiEigenvalues(a: number[][]): number[] {
  const n = a.length;
  const m = a.map((r) => r.slice());
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (m[p]![q] as number) ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p]![q] as number;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = ((m[q]![q] as number) - (m[p]![p] as number)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = m[k]![p] as number;
          const akq = m[k]![q] as number;
          m[k]![p] = c * akp - s * akq;
          m[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = m[p]![k] as number;
          const aqk = m[q]![k] as number;
          m[p]![k] = c * apk - s * aqk;
          m[q]![k] = s * apk + c * aqk;
        }
      }
    }
  }
  return m.map((r, i) => r[i] as number).sort((x, y) => x - y);
}
