/**
 * Per-sample J-based terms: J itself, the self-kernel K(x, x) with kNorm and kTrace, and J
 * through a seeded projection (cross kernels are in cross.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { jacobianRowsOf, selfKernelOf } from './blocks.js';
import type { Chunk } from './backprop.js';
import { forEachChunk, infoOf, planFor, sampleCount } from './engine.js';
import type { RunInfo, RunOptions } from './engine.js';
import type { EngineModel } from './model.js';
import type { Plan } from './plan.js';
import { applySketch, makeSketch } from './projection.js';
import type { ProjectionOptions, Sketch } from './projection.js';

export const emptyTimings = (): RunInfo['timings'] => ({ jacobianMs: 0, reduceMs: 0, totalMs: 0 });

export interface SelfKernelResult {
  n: number;
  V: number;
  /** z, [n, V]. */
  logits: Float32Array;
  /** K(x, x) = J Jᵀ per sample, [n, V, V] (omitted with `returnK: false`). */
  K?: Float32Array;
  /** ‖K(x, x)‖_F, [n]. */
  kNorm: Float32Array;
  /** Tr K(x, x) = ‖J‖_F², [n]. */
  kTrace: Float32Array;
  info: RunInfo;
}

/**
 * K(x, x) for each sample, with kNorm and kTrace.
 * @param x samples [n, length, channels], float32, sample-major.
 */
export async function selfKernel(m: EngineModel, x: Float32Array, opts: RunOptions & { returnK?: boolean } = {}): Promise<SelfKernelResult> {
  const plan = planFor(m, opts);
  const n = sampleCount(m, x, opts);
  const V = m.classes;
  const logits = new Float32Array(n * V);
  const K = opts.returnK === false ? undefined : new Float32Array(n * V * V);
  const kNorm = new Float32Array(n);
  const kTrace = new Float32Array(n);
  const timings = emptyTimings();
  const chunkSize = await forEachChunk(
    m,
    plan,
    x,
    opts,
    (c, cn) => [c.logits, selfKernelOf(c.blocks, cn, V)],
    ([z, k], start, cn) => {
      logits.set(z as Float32Array, start * V);
      const kk = k as Float32Array;
      K?.set(kk, start * V * V);
      for (let s = 0; s < cn; s++) {
        let f = 0;
        let tr = 0;
        for (let i = 0; i < V * V; i++) f += (kk[s * V * V + i] as number) ** 2;
        for (let i = 0; i < V; i++) tr += kk[s * V * V + i * V + i] as number;
        kNorm[start + s] = Math.sqrt(f);
        kTrace[start + s] = tr;
      }
    },
    timings,
  );
  return { n, V, logits, K, kNorm, kTrace, info: infoOf(plan, opts, chunkSize, timings) };
}

/** Column layout of J over a subset. */
export interface ParamInfo {
  name: string;
  layer: string;
  shape: number[];
  size: number;
  /** First column of this weight in J. */
  offset: number;
}

export function paramInfo(plan: Plan): ParamInfo[] {
  return plan.params.map((p) => ({ name: p.name, layer: p.layer, shape: p.shape, size: p.size, offset: plan.offset.get(p.index) as number }));
}

/**
 * J(x) = ∂z/∂θ over the subset, [n, V, P]; columns are the subset's weights in the model's
 * trainable-weight order, each flattened row-major (see `params`).
 */
export async function jacobian(
  m: EngineModel,
  x: Float32Array,
  opts: RunOptions = {},
): Promise<{ J: Float32Array; logits: Float32Array; params: ParamInfo[]; info: RunInfo }> {
  const plan = planFor(m, opts);
  const n = sampleCount(m, x, opts);
  const V = m.classes;
  const J = new Float32Array(n * V * plan.width);
  const logits = new Float32Array(n * V);
  const timings = emptyTimings();
  const chunkSize = await forEachChunk(
    m,
    plan,
    x,
    opts,
    (c, cn) => [c.logits, jacobianRowsOf(c.blocks, cn, V)],
    ([z, j], start) => {
      logits.set(z as Float32Array, start * V);
      J.set(j as Float32Array, start * V * plan.width);
    },
    timings,
  );
  return { J, logits, params: paramInfo(plan), info: infoOf(plan, opts, chunkSize, timings) };
}

/** Error of a projection, measured on the self-kernels of every sample it projected. */
export interface ProjectionReport {
  dim: number;
  seed: number;
  /** ‖K̂(x,x) − K(x,x)‖_F / ‖K(x,x)‖_F over the projected samples. */
  selfKRelError: { mean: number; max: number };
  /** Bound on the standard deviation of one entry, relative to ‖J_i‖‖J_j‖: √(2/d). */
  entryStdBound: number;
}

export interface ErrorTally {
  sum: number;
  max: number;
  count: number;
}

/**
 * Rows of J for a chunk, [n·V, width or d], and (when sketching) the relative self-kernel error of
 * each sample [n] (for `tallyErrors`; read after the tidy, since a GPU backend reads asynchronously).
 */
export function chunkRows(c: Chunk, n: number, V: number, sketch: Sketch | undefined): tf.Tensor[] {
  const rows = tf.reshape(jacobianRowsOf(c.blocks, n, V), [n * V, -1]) as tf.Tensor2D;
  if (sketch === undefined) return [rows];
  const proj = applySketch(sketch, rows);
  const exact = selfKernelOf(c.blocks, n, V);
  const p3 = tf.reshape(proj, [n, V, sketch.dim]);
  const approx = tf.matMul(p3, p3, false, true);
  const rel = tf.div(tf.norm(tf.reshape(tf.sub(approx, exact), [n, -1]), 'euclidean', 1), tf.norm(tf.reshape(exact, [n, -1]), 'euclidean', 1));
  return [proj, rel];
}

/** Adds the relative self-kernel errors of `chunkRows` to a tally. */
export function tallyErrors(tally: ErrorTally, rel: ArrayLike<number>): void {
  for (let i = 0; i < rel.length; i++) {
    const e = rel[i] as number;
    tally.sum += e;
    tally.max = Math.max(tally.max, e);
    tally.count++;
  }
}

export function projectionReport(sketch: Sketch, tally: ErrorTally): ProjectionReport {
  return {
    dim: sketch.dim,
    seed: sketch.seed,
    selfKRelError: { mean: tally.count > 0 ? tally.sum / tally.count : 0, max: tally.max },
    entryStdBound: Math.sqrt(2 / sketch.dim),
  };
}

/**
 * J(x) projected to `dim` columns per class row by the seeded sketch, [n, V, dim], with the
 * measured self-kernel error. Two calls with the same seed and subset are comparable.
 */
export async function projectedJacobian(
  m: EngineModel,
  x: Float32Array,
  opts: RunOptions & { projection: ProjectionOptions },
): Promise<{ J: Float32Array; projection: ProjectionReport; info: RunInfo }> {
  const plan = planFor(m, opts);
  const n = sampleCount(m, x, opts);
  const V = m.classes;
  const sketch = makeSketch(plan.width, opts.projection);
  const J = new Float32Array(n * V * sketch.dim);
  const tally: ErrorTally = { sum: 0, max: 0, count: 0 };
  const timings = emptyTimings();
  const chunkSize = await forEachChunk(
    m,
    plan,
    x,
    opts,
    (c, cn) => chunkRows(c, cn, V, sketch),
    ([j, rel], start) => {
      J.set(j as Float32Array, start * V * sketch.dim);
      tallyErrors(tally, rel as Float32Array);
    },
    timings,
  );
  return {
    J,
    projection: projectionReport(sketch, tally),
    info: infoOf(plan, opts, chunkSize, timings),
  };
}
