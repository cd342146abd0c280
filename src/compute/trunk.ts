/**
 * Frozen-trunk reuse, the engine's entry point. For a parameter subset (Mantis's 'head', a CNN's
 * last layer, …) the forward pass splits at the frontier (trunk-split.ts): what enters the subset
 * depends only on the sample and the weights outside the subset. When those weights are
 * byte-identical at two checkpoints (head or adapter_head fine-tuning), the frontier activations
 * are too, so they are computed once and every term over the subset is computed from them:
 *
 * ```ts
 * const t = await trunkFeatures(m, x, { subset: 'head' });          // once per (sample, trunk)
 * if (t.saves) await computeTerms(m, t.features, labels, { subset: 'head', fromTrunk: { width: t.width } });
 * ```
 *
 * `fromTrunk` works with every J-based computation (`selfKernel`, `computeTerms`, `jacobian`,
 * `projectedJacobian`, `crossKernel`, `kCross`, `firstOrder`, and the pool's versions of them),
 * and `logitsFromTrunk` gives the logits alone (the forward pass of training in head mode). The
 * numbers are the same bits as from the series: the subset side runs the very same ops on the
 * very same inputs, in chunks of the same size (the chunk size depends on the subset, not on where
 * the pass starts). The server keeps the features in PostgreSQL keyed by a hash of the trunk's
 * weights (src/modules/terms/trunk-cache.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { forward } from './backprop.js';
import type { Saved } from './ops/types.js';
import { chunkSizeFor, planFor, readAll, sampleCount } from './engine.js';
import type { RunOptions } from './engine.js';
import type { EngineModel } from './model.js';
import { forwardFromFeatures, trunkOnly, trunkSplit, writeFeatures } from './trunk-split.js';

export { trunkSplit } from './trunk-split.js';
export type { TrunkSplit } from './trunk-split.js';

/** The frontier activations of a batch over a subset. */
export interface TrunkFeatures {
  n: number;
  /** Floats per sample. */
  width: number;
  /** [n, width], sample-major: each frontier op's output (flattened) in op order. */
  features: Float32Array;
  /** False when starting from the frontier saves nothing (it is the input itself): then `features` is empty. */
  saves: boolean;
  /** Layers of the subset (the trunk is every other layer). */
  subset: string[];
  timings: { totalMs: number };
}

/**
 * The trunk's output for x [n, length, channels] over `opts.subset` (the activations entering the
 * subset). In chunks of the size the subset's computations use, so that the features of a chunk
 * are the very tensors those computations would have made.
 */
export async function trunkFeatures(m: EngineModel, x: Float32Array, opts: Pick<RunOptions, 'subset' | 'chunkSize' | 'memoryBudgetBytes' | 'signal'> = {}): Promise<TrunkFeatures> {
  const plan = planFor(m, opts);
  const split = trunkSplit(plan);
  const n = sampleCount(m, x);
  const t0 = performance.now();
  if (!split.saves) return { n, width: split.width, features: new Float32Array(0), saves: false, subset: plan.layers, timings: { totalMs: 0 } };
  const features = new Float32Array(n * split.width);
  const chunk = chunkSizeFor(plan, opts, n);
  const [length, channels] = m.inputShape;
  const per = length * channels;
  const frontier = new Set(split.frontier);
  for (let start = 0; start < n; start += chunk) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
    const c = Math.min(chunk, n - start);
    const outs = tf.tidy(() => {
      const xs = tf.tensor3d(x.subarray(start * per, (start + c) * per), [c, length, channels]);
      const saved = forward(plan.graph, xs, (id) => frontier.has(id), trunkOnly(split));
      return split.frontier.map((id) => tf.reshape((saved[id] as Saved).out, [c, -1]));
    });
    writeFeatures(plan, split, await readAll(outs), features, start, c); // async: a GPU backend cannot read synchronously
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { n, width: split.width, features, saves: true, subset: plan.layers, timings: { totalMs: performance.now() - t0 } };
}

/** Logits [n, V] from trunk features [n, width] over `subset` (the forward pass of the subset side only). */
export async function logitsFromTrunk(m: EngineModel, features: Float32Array, opts: Pick<RunOptions, 'subset'> & { width: number; chunkSize?: number }): Promise<Float32Array> {
  const plan = planFor(m, opts);
  const split = trunkSplit(plan);
  if (split.width !== opts.width) throw new Error(`trunk features of width ${opts.width}; this subset's trunk gives ${split.width}`);
  const n = sampleCount(m, features, { fromTrunk: { width: opts.width } });
  const V = m.classes;
  const out = new Float32Array(n * V);
  const chunk = opts.chunkSize ?? 256;
  for (let start = 0; start < n; start += chunk) {
    const c = Math.min(chunk, n - start);
    const z = tf.tidy(() => {
      const saved = forward(plan.graph, null, () => false, forwardFromFeatures(plan, split, features, start, c));
      return (saved[plan.graph.logits] as Saved).out.clone();
    });
    const [zv] = await readAll([z]);
    out.set(zv as Float32Array, start * V);
  }
  return out;
}
