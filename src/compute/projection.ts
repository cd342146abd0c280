/**
 * A seeded random projection of J's rows for cross kernels over large sets: a balanced
 * CountSketch. Columns are permuted at random, signed ±1 at random, and summed in d contiguous
 * buckets, so ⟨Sa, Sb⟩ is an unbiased estimate of ⟨a, b⟩ with standard deviation about
 * √((‖a‖²‖b‖² + ⟨a,b⟩²)/d) ≤ √(2/d)·‖a‖‖b‖. Applying it costs one pass over J (not P·d per row
 * as a dense Gaussian projection would), so it saves time whenever d is well below P; with
 * d ≥ P it is a signed permutation and changes no kernel value.
 */
import * as tf from '@tensorflow/tfjs';

export interface ProjectionOptions {
  /** Output dimension d (per class row). */
  dim: number;
  /** Seed; the same seed and subset give the same projection in every call and on every backend. */
  seed: number;
}

export interface Sketch {
  dim: number;
  seed: number;
  width: number;
  /** Bucket (output column) and sign of each input column, length width. */
  bucket: Int32Array;
  signs: Float32Array;
}

/** splitmix32: small, fast, good enough to shuffle columns reproducibly. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

export function makeSketch(width: number, opts: ProjectionOptions): Sketch {
  if (!Number.isInteger(opts.dim) || opts.dim < 1) throw new Error('projection dim must be a positive integer');
  if (!Number.isInteger(opts.seed)) throw new Error('projection seed must be an integer');
  const next = rng(opts.seed);
  const perm = new Int32Array(width);
  for (let i = 0; i < width; i++) perm[i] = i;
  for (let i = width - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = perm[i] as number;
    perm[i] = perm[j] as number;
    perm[j] = t;
  }
  const signs = new Float32Array(width);
  for (let i = 0; i < width; i++) signs[i] = next() < 0.5 ? -1 : 1;
  // Contiguous runs of the permuted columns form the buckets: every bucket sums ⌈width/d⌉ columns.
  const per = Math.ceil(width / opts.dim);
  const bucket = new Int32Array(width);
  for (let pos = 0; pos < width; pos++) bucket[perm[pos] as number] = Math.floor(pos / per);
  return { dim: opts.dim, seed: opts.seed, width, bucket, signs };
}

/**
 * Projects rows [m, width] → [m, dim]. On the CPU backends one pass in plain JavaScript over the
 * rows (tfjs gathers along the column axis at ~80 ns an element on wasm; this loop is ~2 ns), sums
 * in float64; on WebGPU a segment sum on the device.
 */
export function applySketch(sk: Sketch, rows: tf.Tensor2D): tf.Tensor2D {
  const [m, width] = rows.shape;
  if (width !== sk.width) throw new Error(`sketch of width ${sk.width} applied to rows of width ${width}`);
  // On a GPU the rows stay there (and cannot be read synchronously): signed columns summed into
  // their buckets by a segment sum over the transposed rows, in float32.
  if (tf.getBackend() === 'webgpu') {
    const signed = tf.mul(tf.transpose(rows), tf.tensor2d(sk.signs, [width, 1]));
    return tf.transpose(tf.unsortedSegmentSum(signed, tf.tensor1d(sk.bucket, 'int32'), sk.dim)) as tf.Tensor2D;
  }
  const data = rows.dataSync() as Float32Array;
  const out = new Float32Array(m * sk.dim);
  const acc = new Float64Array(sk.dim);
  const { bucket, signs } = sk;
  for (let r = 0; r < m; r++) {
    acc.fill(0);
    const base = r * width;
    for (let p = 0; p < width; p++) {
      const b = bucket[p] as number;
      acc[b] = (acc[b] as number) + (signs[p] as number) * (data[base + p] as number);
    }
    out.set(acc, r * sk.dim);
  }
  return tf.tensor2d(out, [m, sk.dim]);
}
