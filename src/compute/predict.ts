/**
 * Forward-only terms (logits, π, loss, correct, A, H, G) and the per-sample row of every term the
 * server stores for a checkpoint (those plus kNorm and kTrace, in one pass).
 */
import * as tf from '@tensorflow/tfjs';
import { forwardLogits } from './backprop.js';
import { readAll, sampleCount } from './engine.js';
import type { RunInfo, RunOptions } from './engine.js';
import { selfKernel } from './kernel.js';
import type { EngineModel } from './model.js';
import { outputTerms } from './terms.js';
import type { OutputTerms } from './terms.js';

/** Logits z for x [n, length, channels] → [n, V]; forward pass only, in chunks of `chunkSize` (256). */
export async function logitsOf(m: EngineModel, x: Float32Array, chunkSize = 256): Promise<Float32Array> {
  const n = sampleCount(m, x);
  const V = m.classes;
  const [length, channels] = m.inputShape;
  const per = length * channels;
  const out = new Float32Array(n * V);
  for (let start = 0; start < n; start += chunkSize) {
    const c = Math.min(chunkSize, n - start);
    const z = tf.tidy(() => forwardLogits(m.graph, tf.tensor3d(x.subarray(start * per, (start + c) * per), [c, length, channels])));
    const [values] = await readAll([z]);
    out.set(values as Float32Array, start * V);
  }
  return out;
}

/**
 * π, loss, correct, ‖A‖_F, Tr H, the smallest eigenvalue of H (on 1⊥) and ‖G‖ from one forward
 * pass.
 * @param labels class per sample; loss, correct and G need them.
 * @param opts.matrices also return A and H [n, V, V] and G [n, V].
 */
export async function outputs(m: EngineModel, x: Float32Array, labels?: ArrayLike<number>, opts: { matrices?: boolean } = {}): Promise<OutputTerms> {
  return outputTerms(await logitsOf(m, x), m.classes, labels, opts.matrices ?? false);
}

export interface SampleTerms extends OutputTerms {
  /** ‖K(x, x)‖_F, [n]. */
  kNorm: Float32Array;
  /** Tr K(x, x), [n]. */
  kTrace: Float32Array;
  /** K(x, x), [n, V, V], with `returnK`. */
  K?: Float32Array;
  info: RunInfo;
}

/**
 * Every per-sample term (docs/concepts.md) for a batch at one checkpoint: the output terms and the
 * self-kernel statistics over the subset, from one pass (the forward pass of the J computation
 * gives the logits).
 */
export async function computeTerms(
  m: EngineModel,
  x: Float32Array,
  labels?: ArrayLike<number>,
  opts: RunOptions & { matrices?: boolean; returnK?: boolean } = {},
): Promise<SampleTerms> {
  const k = await selfKernel(m, x, { ...opts, returnK: opts.returnK ?? false });
  const terms = outputTerms(k.logits, m.classes, labels, opts.matrices ?? false);
  return { ...terms, kNorm: k.kNorm, kTrace: k.kTrace, K: k.K, info: k.info };
}
