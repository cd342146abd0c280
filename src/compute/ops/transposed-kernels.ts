/**
 * Wᵀ of Dense kernels, kept between backward passes. The backward of a Dense layer multiplies the
 * signal by Wᵀ; tfjs-wasm's product with `transposeB` runs about ten times slower than a plain
 * product on these shapes (XNNPACK packs the weights either way), so Wᵀ is materialised, and
 * transposing the same weights again for every chunk cost a third of the product itself
 * ([330 × 3072]·Wᵀ: 27 ms with the transpose, 18.5 ms from a kept Wᵀ, one wasm thread).
 *
 * An entry is keyed by the kernel and remembers which values it was made from (the variable's
 * dataId changes when new weights are written into it, as a model swap does), so it is never stale.
 * It costs one more copy of each kernel that a signal goes back through, made on first use; the
 * model's dispose releases them (releaseTransposedKernels).
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph } from '../graph.js';

const kept = new WeakMap<tf.LayerVariable, { values: object; t: tf.Tensor2D }>();
/** How many tensors the map holds (a WeakMap cannot be counted). */
let keptCount = 0;

function release(kernel: tf.LayerVariable): void {
  const entry = kept.get(kernel);
  if (!entry) return;
  entry.t.dispose();
  kept.delete(kernel);
  keptCount--;
}

/** Wᵀ of `kernel` as its values are now. Kept outside any tf.tidy: the caller must not dispose it. */
export function transposedKernel(kernel: tf.LayerVariable): tf.Tensor2D {
  const w = kernel.read();
  const hit = kept.get(kernel);
  if (hit && hit.values === w.dataId && !hit.t.isDisposed) return hit.t;
  release(kernel);
  const t = tf.keep(tf.transpose(w as tf.Tensor2D));
  kept.set(kernel, { values: w.dataId, t });
  keptCount++;
  return t;
}

/** Releases the Wᵀ kept for a graph's kernels (when its model is disposed). */
export function releaseTransposedKernels(graph: Graph): void {
  for (const op of graph.ops) if (op.kind === 'dense') release(op.kernel);
}

/**
 * How many tensors are kept here, across every model of this thread: the only tensors a public call
 * may leave alive (tests that check for leaks count them as the model's, like its weights).
 */
export function keptTransposedKernels(): number {
  return keptCount;
}
