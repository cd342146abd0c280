/**
 * Cross kernels K(x_o, x_u) = J(x_o) J(x_u)ᵀ between two sets, and the kCross score.
 *
 * J of a block of x_u stays in memory (as many samples as half the budget holds) while chunks
 * of x_o stream past it; larger sets recompute J(x_o) once per block. Blocks keep their
 * structure where it makes the product cheaper than J's dense columns: a Dense layer on flat
 * features as (a·a′ + 1)(g gᵀ′), a separable layer (a GAP-headed CNN's last convolution) as
 * Σ_ch u[c,ch] u[c′,ch] (q_ch q′_chᵀ); everything else is one product of dense rows.
 */
import * as tf from '@tensorflow/tfjs';
import { defaultMemoryBudget } from './backend.js';
import type { Chunk } from './backprop.js';
import { jacobianRowsOf } from './blocks.js';
import { chunkOf, chunkSizeFor, infoOf, loopMatMul, planFor, readAll, sampleCount } from './engine.js';
import type { RunInfo, RunOptions } from './engine.js';
import { chunkRows, emptyTimings, projectionReport, tallyErrors } from './kernel.js';
import type { ErrorTally, ProjectionReport } from './kernel.js';
import type { EngineModel } from './model.js';
import { bmm } from './ops/linalg.js';
import type { Block } from './ops/types.js';
import { makeSketch } from './projection.js';
import type { ProjectionOptions, Sketch } from './projection.js';

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

/** J of n samples in the forms the products use. Sample-major; u-blocks concatenate them. */
interface Factors {
  /** Dense rows [n·V, P_dense] (or the sketch of all of J), null when there are none. */
  rows: tf.Tensor2D | null;
  /** Dense layers on flat features: a [n, din] (null when only the bias is in the subset), g [n·V, dout]. */
  outer: Array<{ a: tf.Tensor2D | null; g: tf.Tensor2D; bias: boolean }>;
  /** Separable layers: q [n, C, r], u [V, C]. */
  sep: Array<{ q: tf.Tensor3D; u: tf.Tensor2D }>;
  /** With a sketch: each sample's relative self-kernel error [n], read and disposed by `factors`. */
  rel?: tf.Tensor;
}

function factorsOf(c: Chunk, n: number, V: number, sketch: Sketch | undefined): Factors {
  if (sketch !== undefined) {
    const [rows, rel] = chunkRows(c, n, V, sketch);
    return { rows: rows as tf.Tensor2D, outer: [], sep: [], rel: rel as tf.Tensor };
  }
  const dense: Block[] = [];
  const f: Factors = { rows: null, outer: [], sep: [] };
  for (const b of c.blocks) {
    if (b.kind === 'outer') {
      f.outer.push({ a: b.kernel === null ? null : (b.a as tf.Tensor2D), g: tf.reshape(b.g, [n * V, -1]) as tf.Tensor2D, bias: b.bias !== null });
    } else if (b.kind === 'sepLinear') {
      f.sep.push({ q: b.q as tf.Tensor3D, u: b.u as tf.Tensor2D });
    } else {
      dense.push(b);
    }
  }
  if (dense.length > 0) f.rows = tf.reshape(jacobianRowsOf(dense, n, V), [n * V, -1]) as tf.Tensor2D;
  return f;
}

function concatFactors(parts: Factors[]): Factors {
  const first = parts[0] as Factors;
  const cat = <T extends tf.Tensor>(ts: T[]): T => (ts.length === 1 ? (ts[0] as T).clone() : (tf.concat(ts, 0) as T));
  return {
    rows: first.rows === null ? null : cat(parts.map((p) => p.rows as tf.Tensor2D)),
    outer: first.outer.map((o, i) => ({
      a: o.a === null ? null : cat(parts.map((p) => p.outer[i]?.a as tf.Tensor2D)),
      g: cat(parts.map((p) => p.outer[i]?.g as tf.Tensor2D)),
      bias: o.bias,
    })),
    sep: first.sep.map((s, i) => ({ q: cat(parts.map((p) => p.sep[i]?.q as tf.Tensor3D)), u: s.u.clone() })),
  };
}

/**
 * Columns of J per partial product of dense rows. One product over all of J's columns ([n·V, P] ×
 * [P, nb·V], P up to millions) streams the whole packed right-hand side through the cache for every
 * strip of rows; summing products over slices of P keeps each slice's operands in cache
 * ([160 × 69002]·[69002 × 640] on wasm, one thread: 11 GFLOP/s whole, 16 in slices of 4096, 18 in
 * slices of 1024).
 */
const ROWS_SLICE = 1024;

/** The u-side operands, transposed once per block so that every product is a plain one. */
interface UBlock {
  nb: number;
  /** Jᵀ of the block's dense rows, in slices of ROWS_SLICE rows ([≤ ROWS_SLICE, nb·V] each). */
  rowsT: tf.Tensor2D[] | null;
  outer: Array<{ aT: tf.Tensor2D | null; gT: tf.Tensor2D; bias: boolean }>;
  /** [C, r, nb] */
  sep: tf.Tensor3D[];
}

function uBlockOf(f: Factors, nb: number): UBlock {
  return {
    nb,
    rowsT: f.rows === null ? null : slicesOf(tf.transpose(f.rows)),
    outer: f.outer.map((o) => ({ aT: o.a === null ? null : tf.transpose(o.a), gT: tf.transpose(o.g), bias: o.bias })),
    sep: f.sep.map((s) => tf.transpose(s.q, [1, 2, 0])),
  };
}

/** Consecutive slices of ROWS_SLICE rows. Call inside tf.tidy. */
function slicesOf(t: tf.Tensor2D): tf.Tensor2D[] {
  const [rows, cols] = t.shape;
  const out: tf.Tensor2D[] = [];
  for (let r = 0; r < rows; r += ROWS_SLICE) out.push(tf.slice(t, [r, 0], [Math.min(ROWS_SLICE, rows - r), cols]));
  return out;
}

/** rows [m, P] × (the slices of Jᵀ [P, k]), summed slice by slice: [m, k]. Call inside tf.tidy. */
function slicedProduct(rows: tf.Tensor2D, slicesT: tf.Tensor2D[]): tf.Tensor2D {
  const m = rows.shape[0];
  let at = 0;
  let sum: tf.Tensor | null = null;
  for (const slice of slicesT) {
    const width = slice.shape[0];
    const part = tf.matMul(slicesT.length === 1 ? rows : tf.slice(rows, [0, at], [m, width]), slice);
    sum = sum === null ? part : tf.add(sum, part);
    at += width;
  }
  return sum as tf.Tensor2D;
}

/** K between a chunk of x_o (factors fo) and a u-block, [n, nb, V, V]. Call inside tf.tidy. */
function product(fo: Factors, ub: UBlock, n: number, V: number, loop: boolean): tf.Tensor {
  const nb = ub.nb;
  const parts: tf.Tensor[] = [];
  if (fo.rows !== null && ub.rowsT !== null) parts.push(tf.reshape(slicedProduct(fo.rows, ub.rowsT), [n, V, nb, V]));
  fo.outer.forEach((o, i) => {
    const u = ub.outer[i] as UBlock['outer'][number];
    const G = tf.reshape(tf.matMul(o.g, u.gT), [n, V, nb, V]);
    let A: tf.Tensor | null = o.a === null || u.aT === null ? null : tf.matMul(o.a, u.aT);
    if (o.bias) A = A === null ? null : tf.add(A, 1);
    else if (A === null) return;
    parts.push(A === null ? G : tf.mul(G, tf.reshape(A, [n, 1, nb, 1])));
  });
  fo.sep.forEach((s, i) => {
    const C = s.q.shape[1] as number;
    const qo = tf.transpose(s.q, [1, 0, 2]); // [C, n, r]
    const Q = bmm(qo, ub.sep[i] as tf.Tensor3D, loop); // [C, n, nb]
    const uu = tf.reshape(tf.mul(tf.reshape(s.u, [V, 1, C]), tf.reshape(s.u, [1, V, C])), [V * V, C]);
    const S = tf.reshape(tf.matMul(uu as tf.Tensor2D, tf.reshape(Q, [C, n * nb]) as tf.Tensor2D), [V, V, n, nb]);
    parts.push(tf.transpose(S, [2, 0, 3, 1]));
  });
  const sum = parts.length === 1 ? (parts[0] as tf.Tensor) : tf.addN(parts);
  return tf.transpose(sum, [0, 2, 1, 3]);
}

function disposeFactors(f: Factors | UBlock): void {
  if ('nb' in f) {
    tf.dispose([...(f.rowsT ?? []), ...f.outer.flatMap((o) => [...(o.aT === null ? [] : [o.aT]), o.gT]), ...f.sep]);
  } else {
    tf.dispose([...(f.rows === null ? [] : [f.rows]), ...f.outer.flatMap((o) => [...(o.a === null ? [] : [o.a]), o.g]), ...f.sep.flatMap((s) => [s.q, s.u])]);
  }
}

/** tf.tidy for a result that nests tensors in objects (tidy keeps them; its type does not say so). */
function tidy<T>(f: () => T): T {
  return tf.tidy(f as unknown as () => tf.TensorContainer) as unknown as T;
}

/** Cross kernels K(x_o, x_u) and kCross of each x_u against the set O. */
export async function crossKernel(m: EngineModel, xo: Float32Array, xu: Float32Array, opts: CrossKernelOptions = {}): Promise<CrossKernelResult> {
  const plan = planFor(m, opts);
  const no = sampleCount(m, xo, opts);
  const nu = sampleCount(m, xu, opts);
  const V = m.classes;
  const loop = loopMatMul();
  const sketch = opts.projection === undefined ? undefined : makeSketch(plan.width, opts.projection);
  const cols = sketch === undefined ? plan.width : sketch.dim;
  const budget = opts.memoryBudgetBytes ?? defaultMemoryBudget();
  const chunk = chunkSizeFor(plan, opts, Math.max(no, nu));
  const uBlock = Math.max(1, Math.min(nu, Math.floor(budget / 2 / (V * cols * 4))));
  const K = opts.returnK === false ? undefined : new Float32Array(no * nu * V * V);
  const normSums = new Float64Array(nu);
  const logitsO = new Float32Array(no * V);
  const logitsU = new Float32Array(nu * V);
  const tally: ErrorTally = { sum: 0, max: 0, count: 0 };
  const timings = emptyTimings();
  const t0 = performance.now();
  const tick = () => new Promise<void>((r) => setImmediate(r));

  const factors = async (x: Float32Array, start: number, n: number, logitsOut: Float32Array, measure: boolean): Promise<Factors> => {
    const [f, z] = tidy(() => {
      const t1 = performance.now();
      const c = chunkOf(m, plan, x, start, n, opts, loop);
      const t2 = performance.now();
      const fs = factorsOf(c, n, V, sketch);
      timings.jacobianMs += t2 - t1;
      timings.reduceMs += performance.now() - t2;
      return [fs, c.logits] as const;
    });
    const [zv, rel] = await readAll(f.rel === undefined ? [z] : [z, f.rel]);
    logitsOut.set(zv as Float32Array, start * V);
    if (measure && rel !== undefined) tallyErrors(tally, rel);
    delete f.rel;
    return f;
  };

  for (let u0 = 0; u0 < nu; u0 += uBlock) {
    const nb = Math.min(uBlock, nu - u0);
    const parts: Factors[] = [];
    for (let s = u0; s < u0 + nb; s += chunk) {
      parts.push(await factors(xu, s, Math.min(chunk, u0 + nb - s), logitsU, true));
      await tick();
    }
    const ub = tidy(() => uBlockOf(concatFactors(parts), nb));
    parts.forEach(disposeFactors);
    try {
      for (let o0 = 0; o0 < no; o0 += chunk) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
        const n = Math.min(chunk, no - o0);
        const fo = await factors(xo, o0, n, logitsO, u0 === 0);
        const t2 = performance.now();
        const blockK = tf.tidy(() => product(fo, ub, n, V, loop));
        const [kv] = (await readAll([blockK])) as [Float32Array];
        timings.reduceMs += performance.now() - t2;
        disposeFactors(fo);
        for (let o = 0; o < n; o++) {
          for (let u = 0; u < nb; u++) {
            const base = (o * nb + u) * V * V;
            let f = 0;
            for (let i = 0; i < V * V; i++) f += (kv[base + i] as number) ** 2;
            normSums[u0 + u] = (normSums[u0 + u] as number) + Math.sqrt(f);
            K?.set(kv.subarray(base, base + V * V), ((o0 + o) * nu + u0 + u) * V * V);
          }
        }
        opts.onProgress?.(Math.min(no * nu, u0 * no + (o0 + n) * nb), no * nu);
        await tick();
      }
    } finally {
      disposeFactors(ub);
    }
  }
  timings.totalMs = performance.now() - t0;
  const kCross = new Float32Array(nu);
  for (let u = 0; u < nu; u++) kCross[u] = (normSums[u] as number) / Math.max(no, 1);
  const projection = sketch === undefined ? undefined : projectionReport(sketch, tally);
  return { no, nu, V, K, kCross, logitsO, logitsU, projection, info: infoOf(plan, opts, chunk, timings) };
}

/** kCross(x_u; T) = mean over x_o ∈ T of ‖K(x_o, x_u)‖_F for each x_u, [nu]. */
export async function kCross(m: EngineModel, xu: Float32Array, target: Float32Array, opts: CrossKernelOptions = {}): Promise<{ kCross: Float32Array; projection?: ProjectionReport; info: RunInfo }> {
  const r = await crossKernel(m, target, xu, { ...opts, returnK: false });
  return { kCross: r.kCross, projection: r.projection, info: r.info };
}
