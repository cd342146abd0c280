/**
 * The J-based terms: per-sample J, the self-kernel K(x, x) with kNorm and kTrace, and cross
 * kernels K(x_o, x_u) with the kCross score, exact or through a seeded projection.
 */
import * as tf from '@tensorflow/tfjs';
import { jacobianRowsOf, selfKernelOf } from './blocks.js';
import { autodiffChunk } from './autodiff.js';
import { runChunk } from './backprop.js';
import type { Chunk } from './backprop.js';
import { chunkSizeFor, forEachChunk, infoOf, loopMatMul, planFor, sampleCount } from './engine.js';
import type { RunInfo, RunOptions } from './engine.js';
import type { EngineModel } from './model.js';
import type { Plan } from './plan.js';
import { applySketch, makeSketch } from './projection.js';
import type { ProjectionOptions, Sketch } from './projection.js';

const emptyTimings = (): RunInfo['timings'] => ({ jacobianMs: 0, reduceMs: 0, totalMs: 0 });

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
  const n = sampleCount(m, x);
  const V = m.classes;
  const logits = new Float32Array(n * V);
  const K = opts.returnK === false ? undefined : new Float32Array(n * V * V);
  const kNorm = new Float32Array(n);
  const kTrace = new Float32Array(n);
  const timings = emptyTimings();
  const loop = loopMatMul();
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
  const n = sampleCount(m, x);
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

interface ErrorTally {
  sum: number;
  max: number;
  count: number;
}

/** Rows of J for a chunk, [n·V, width or d], and (when sketching) the self-kernel error tally. */
function chunkRows(c: Chunk, n: number, V: number, sketch: Sketch | undefined, loop: boolean, tally: ErrorTally): tf.Tensor[] {
  const rows = tf.reshape(jacobianRowsOf(c.blocks, n, V), [n * V, -1]) as tf.Tensor2D;
  if (sketch === undefined) return [rows];
  const proj = applySketch(sketch, rows);
  const exact = selfKernelOf(c.blocks, n, V);
  const p3 = tf.reshape(proj, [n, V, sketch.dim]);
  const approx = tf.matMul(p3, p3, false, true);
  const rel = tf.div(tf.norm(tf.reshape(tf.sub(approx, exact), [n, -1]), 'euclidean', 1), tf.norm(tf.reshape(exact, [n, -1]), 'euclidean', 1));
  const r = rel.dataSync();
  for (const e of r) {
    tally.sum += e;
    tally.max = Math.max(tally.max, e);
    tally.count++;
  }
  return [proj];
}

export interface CrossKernelResult {
  no: number;
  nu: number;
  V: number;
  /** K(x_o, x_u) = J(x_o) J(x_u)ᵀ, [no, nu, V, V] (omitted with `returnK: false`). */
  K?: Float32Array;
  /** kCross(x_u; O) = mean over o of ‖K(x_o, x_u)‖_F, [nu]. */
  kCross: Float32Array;
  /** z of each set, [no, V] and [nu, V]. */
  logitsO: Float32Array;
  logitsU: Float32Array;
  /** Present when a projection was used. */
  projection?: ProjectionReport;
  info: RunInfo;
}

export interface CrossKernelOptions extends RunOptions {
  /** Project J to `dim` columns with a seeded sketch before the products (approximate). */
  projection?: ProjectionOptions;
  /** Return the full [no, nu, V, V] kernel (default true). */
  returnK?: boolean;
}

/**
 * Cross kernels K(x_o, x_u) between two sets, and kCross of each x_u against the set O. J of a
 * block of x_u stays in memory (as many samples as half the budget holds) while chunks of x_o
 * stream past it; larger sets recompute J(x_o) once per block.
 */
export async function crossKernel(m: EngineModel, xo: Float32Array, xu: Float32Array, opts: CrossKernelOptions = {}): Promise<CrossKernelResult> {
  const plan = planFor(m, opts);
  const no = sampleCount(m, xo);
  const nu = sampleCount(m, xu);
  const V = m.classes;
  const [length, channels] = m.inputShape;
  const per = length * channels;
  const loop = loopMatMul();
  const sketch = opts.projection === undefined ? undefined : makeSketch(plan.width, opts.projection);
  const cols = sketch === undefined ? plan.width : sketch.dim;
  const budget = opts.memoryBudgetBytes ?? 512 * 2 ** 20;
  const chunk = chunkSizeFor(plan, opts, Math.max(no, nu));
  const uBlock = Math.max(1, Math.min(nu, Math.floor(budget / 2 / (V * cols * 4))));
  const K = opts.returnK === false ? undefined : new Float32Array(no * nu * V * V);
  const normSums = new Float64Array(nu);
  const logitsO = new Float32Array(no * V);
  const logitsU = new Float32Array(nu * V);
  const tally: ErrorTally = { sum: 0, max: 0, count: 0 };
  const timings = emptyTimings();
  const t0 = performance.now();

  const rowsOf = (x: Float32Array, start: number, n: number, logitsOut: Float32Array, measure: boolean): tf.Tensor2D => {
    const [rows, z] = tf.tidy(() => {
      const xs = tf.tensor3d(x.subarray(start * per, (start + n) * per), [n, length, channels]);
      const t1 = performance.now();
      const c = opts.path === 'generic' ? autodiffChunk(plan, xs) : runChunk(plan, xs, loop);
      const t2 = performance.now();
      const r = chunkRows(c, n, V, sketch, loop, measure ? tally : { sum: 0, max: 0, count: 0 });
      timings.jacobianMs += t2 - t1;
      timings.reduceMs += performance.now() - t2;
      return [r[0] as tf.Tensor2D, c.logits];
    });
    logitsOut.set(z.dataSync() as Float32Array, start * V);
    z.dispose();
    return rows;
  };

  for (let u0 = 0; u0 < nu; u0 += uBlock) {
    const nb = Math.min(uBlock, nu - u0);
    const parts: tf.Tensor2D[] = [];
    for (let s = u0; s < u0 + nb; s += chunk) {
      parts.push(rowsOf(xu, s, Math.min(chunk, u0 + nb - s), logitsU, true));
      await new Promise<void>((r) => setImmediate(r));
    }
    const colsT = tf.tidy(() => tf.transpose(parts.length === 1 ? (parts[0] as tf.Tensor2D) : tf.concat(parts, 0)));
    tf.dispose(parts);
    try {
      for (let o0 = 0; o0 < no; o0 += chunk) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
        const n = Math.min(chunk, no - o0);
        const rowsO = rowsOf(xo, o0, n, logitsO, u0 === 0);
        const blockK = tf.tidy(() => {
          const t2 = performance.now();
          const prod = tf.matMul(rowsO, colsT);
          const r = tf.transpose(tf.reshape(prod, [n, V, nb, V]), [0, 2, 1, 3]);
          r.dataSync();
          timings.reduceMs += performance.now() - t2;
          return r;
        });
        rowsO.dispose();
        const kv = blockK.dataSync() as Float32Array;
        blockK.dispose();
        for (let o = 0; o < n; o++) {
          for (let u = 0; u < nb; u++) {
            const base = (o * nb + u) * V * V;
            let f = 0;
            for (let i = 0; i < V * V; i++) f += (kv[base + i] as number) ** 2;
            normSums[u0 + u] = (normSums[u0 + u] as number) + Math.sqrt(f);
            K?.set(kv.subarray(base, base + V * V), (((o0 + o) * nu + u0 + u) * V * V));
          }
        }
        opts.onProgress?.(Math.min(no * nu, u0 * no + (o0 + n) * nb), no * nu);
        await new Promise<void>((r) => setImmediate(r));
      }
    } finally {
      colsT.dispose();
    }
  }
  timings.totalMs = performance.now() - t0;
  const kCross = new Float32Array(nu);
  for (let u = 0; u < nu; u++) kCross[u] = (normSums[u] as number) / Math.max(no, 1);
  const projection =
    sketch === undefined
      ? undefined
      : {
          dim: sketch.dim,
          seed: sketch.seed,
          selfKRelError: { mean: tally.count > 0 ? tally.sum / tally.count : 0, max: tally.max },
          entryStdBound: Math.sqrt(2 / sketch.dim),
        };
  return { no, nu, V, K, kCross, logitsO, logitsU, projection, info: infoOf(plan, opts, chunk, timings) };
}

/** kCross(x_u; T) = mean over x_o ∈ T of ‖K(x_o, x_u)‖_F for each x_u, [nu]. */
export async function kCross(m: EngineModel, xu: Float32Array, target: Float32Array, opts: CrossKernelOptions = {}): Promise<{ kCross: Float32Array; projection?: ProjectionReport; info: RunInfo }> {
  const r = await crossKernel(m, target, xu, { ...opts, returnK: false });
  return { kCross: r.kCross, projection: r.projection, info: r.info };
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
  const n = sampleCount(m, x);
  const V = m.classes;
  const sketch = makeSketch(plan.width, opts.projection);
  const J = new Float32Array(n * V * sketch.dim);
  const tally: ErrorTally = { sum: 0, max: 0, count: 0 };
  const loop = loopMatMul();
  const timings = emptyTimings();
  const chunkSize = await forEachChunk(
    m,
    plan,
    x,
    opts,
    (c, cn) => chunkRows(c, cn, V, sketch, loop, tally),
    ([j], start) => J.set(j as Float32Array, start * V * sketch.dim),
    timings,
  );
  return {
    J,
    projection: {
      dim: sketch.dim,
      seed: sketch.seed,
      selfKRelError: { mean: tally.count > 0 ? tally.sum / tally.count : 0, max: tally.max },
      entryStdBound: Math.sqrt(2 / sketch.dim),
    },
    info: infoOf(plan, opts, chunkSize, timings),
  };
}
