/**
 * Fast-path rules of Mantis's token-generator layers (series-layers.ts): the channel split,
 * the series normalisation, the no-gradient difference and patch statistics, and the
 * multi-scale scalar encoder with its per-sample weight gradients. Signals are class-inner,
 * [n, …positions, V, C], as everywhere in the fast path.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { channelSeries, patchStat, scalarEncode, seriesDiff, seriesNormParts } from '../series-layers.js';
import type { ScalarParts } from '../series-layers.js';
import { expandV } from './linalg.js';
import type { Block, Ctx, Saved } from './types.js';

type SeriesNormOp = Extract<Op, { kind: 'seriesNorm' }>;
type StopOp = Extract<Op, { kind: 'stopGradient' }>;
type ScalarOp = Extract<Op, { kind: 'scalarEncoder' }>;

export function channelSeriesForward(x: tf.Tensor): Saved {
  return { out: channelSeries(x) };
}

/** δ [n, G, L, V, 1] → [n, L, V, G]. */
export function channelSeriesBackward(dy: tf.Tensor): tf.Tensor {
  const [n, g, l, V] = dy.shape as [number, number, number, number, number];
  return tf.transpose(tf.reshape(dy, [n, g, l, V]), [0, 2, 3, 1]);
}

export function seriesNormForward(op: SeriesNormOp, x: tf.Tensor): Saved {
  const { xc, s, r, out } = seriesNormParts(x, op.epsilon);
  return { out, extra: { xc, s, r } };
}

/**
 * y = xc·r with xc = x − mean, s the unbiased std over the L time steps and r = 1/(s + ε):
 *   δx = r(δy − mean δy) − r² (Σ_t δy·xc) xc / ((L − 1) s).
 * The second term needs s > 0; for a constant series (s = 0, xc = 0) it is taken as 0 (what
 * the limit and PyTorch's subgradient convention agree on, instead of 0/0). δ is [n, …, L, V, 1].
 */
export function seriesNormBackward(saved: Saved, dy: tf.Tensor): tf.Tensor {
  const axis = dy.rank - 3;
  const l = dy.shape[axis] as number;
  const { xc: xc0, r: r0, s: s0 } = saved.extra as Record<'xc' | 'r' | 's', tf.Tensor>;
  const xc = expandV(xc0);
  const r = expandV(r0);
  const s = expandV(s0);
  const centred = tf.sub(dy, tf.mean(dy, axis, true));
  const dots = tf.sum(tf.mul(dy, xc), axis, true);
  const safeS = tf.maximum(s, 1e-30);
  const coef = tf.div(tf.mul(tf.square(r), dots), tf.mul(safeS, Math.max(l - 1, 1)));
  return tf.sub(tf.mul(centred, r), tf.mul(coef, xc));
}

/** The difference or patch statistic; no backward (the plan never sends a signal through it). */
export function stopGradientForward(op: StopOp, x: tf.Tensor): Saved {
  if (op.fn === 'diff') return { out: seriesDiff(x) };
  return { out: patchStat(x, op.patches, op.fn === 'patchMean' ? 'mean' : 'std') };
}

export function scalarEncoderForward(op: ScalarOp, x: tf.Tensor): Saved {
  const parts = scalarEncode(x, op.stacked(), op.scales, op.epsilon, op.lnEpsilon);
  const out = tf.reshape(parts.y, [...x.shape.slice(0, -1), parts.y.shape[1]]);
  return { out, extra: { ...parts } };
}

/** Per (sample, position, scale) pieces of the backward: δ [n, Q, 1, V, H] and friends. */
function scalarPieces(op: ScalarOp, saved: Saved, dy: tf.Tensor, ctx: Ctx) {
  const p = saved.extra as unknown as ScalarParts;
  const S = op.scales.length;
  const H = dy.shape[dy.rank - 1] as number;
  const { n, V } = ctx;
  const d = tf.reshape(dy, [n, -1, 1, V, H]); // [n, Q, 1, V, H]
  const q = d.shape[1] as number;
  const alpha = tf.reshape(p.alpha, [n, q, S, 1, 1]);
  const zn = tf.reshape(p.zn, [n, q, S, 1, H]);
  const { gamma } = op.stacked();
  // Signal at the normalised z_k: g = δ·α_k·γ_k, then back through LayerNorm over H.
  const g = tf.mul(d, tf.mul(alpha, tf.reshape(gamma, [1, 1, S, 1, H])));
  const m1 = tf.mean(g, 4, true);
  const m2 = tf.mean(tf.mul(g, zn), 4, true);
  const dz = tf.mul(tf.sub(tf.sub(g, m1), tf.mul(zn, m2)), tf.reshape(p.rstd, [n, q, S, 1, 1])); // [n, Q, S, V, H]
  return { p, S, H, q, d, alpha, zn, dz };
}

/**
 * Per-sample gradients of w_k, b_k, γ_k, β_k (rows [n, V, units] per weight), positions
 * summed: ∂/∂β_k = Σ δ α_k, ∂/∂γ_k = Σ δ α_k ẑ_k, ∂/∂w_k = Σ δz_k x, ∂/∂b_k = Σ δz_k s_k.
 */
export function scalarEncoderGrads(op: ScalarOp, saved: Saved, dy: tf.Tensor, ctx: Ctx): Block[] {
  const want = op.groups.map((g) => ({
    w: ctx.paramOf(g.w),
    b: ctx.paramOf(g.b),
    gamma: ctx.paramOf(g.gamma),
    beta: ctx.paramOf(g.beta),
  }));
  if (want.every((w) => w.w === null && w.b === null && w.gamma === null && w.beta === null)) return [];
  const { p, S, q, d, alpha, zn, dz } = scalarPieces(op, saved, dy, ctx);
  const { n } = ctx;
  const perScale = (t: tf.Tensor): tf.Tensor[] => tf.unstack(t, 1); // [n, S, V, H] → S × [n, V, H]
  const beta = perScale(tf.sum(tf.mul(d, alpha), 1));
  const gamma = perScale(tf.sum(tf.mul(d, tf.mul(alpha, zn)), 1));
  const w = perScale(tf.sum(tf.mul(dz, tf.reshape(p.x, [n, q, 1, 1, 1])), 1));
  const b = perScale(tf.mul(tf.sum(dz, 1), tf.reshape(tf.tensor1d(op.scales), [1, S, 1, 1])));
  const blocks: Block[] = [];
  want.forEach((idx, k) => {
    const add = (param: number | null, rows: tf.Tensor[]) => {
      if (param !== null) blocks.push({ kind: 'rows', param, rows: rows[k] as tf.Tensor });
    };
    add(idx.w, w);
    add(idx.b, b);
    add(idx.gamma, gamma);
    add(idx.beta, beta);
  });
  return blocks;
}

/**
 * δx [n, …, V, 1] of the encoder: through z_k = x·w_k + s_k b_k, Σ_{k,h} δz_k w_k, plus through
 * the scale weights α(x), Σ_k α_k′(x) Σ_h δ ⊙ (γ_k ẑ_k + β_k), where with a_k = |u_k|,
 * u_k = 1/log r_k, r_k = |x|/s_k + ε: a_k′ = −sign(u_k) u_k² sign(x) / (s_k r_k) and
 * α_k′ = (a_k′ − α_k Σ_j a_j′) / Σ_j a_j. (Mantis feeds the encoder patch statistics, which carry
 * no gradient, so this runs only where the encoder is used on a signal path elsewhere.)
 */
export function scalarEncoderBackward(op: ScalarOp, saved: Saved, dy: tf.Tensor, ctx: Ctx): tf.Tensor {
  const { p, S, H, q, d, dz } = scalarPieces(op, saved, dy, ctx);
  const { n, V } = ctx;
  const { w } = op.stacked();
  const viaZ = tf.sum(tf.mul(dz, tf.reshape(w, [1, 1, S, 1, H])), [2, 4]); // [n, Q, V]
  const sc = tf.reshape(tf.tensor1d(op.scales), [1, S]);
  const da = tf.div(tf.mul(tf.mul(tf.neg(tf.sign(p.inv)), tf.square(p.inv)), tf.sign(p.x)), tf.mul(sc, p.ratio)); // [M, S]
  const dalpha = tf.div(tf.sub(da, tf.mul(p.alpha, tf.sum(da, 1, true))), p.aSum); // [M, S]
  const dzh = tf.sum(tf.mul(d, tf.reshape(p.zh, [n, q, S, 1, H])), 4); // [n, Q, S, V]
  const viaAlpha = tf.sum(tf.mul(dzh, tf.reshape(dalpha, [n, q, S, 1])), 2); // [n, Q, V]
  return tf.reshape(tf.add(viaZ, viaAlpha), [...dy.shape.slice(0, -2), V, 1]);
}
