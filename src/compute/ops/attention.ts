/**
 * The weightless core of multi-head self-attention (layer `SelfAttention`): packed [q | k | v]
 * [n, T, 3d] → softmax(q kᵀ/√dh) v, heads merged, [n, T, d].
 *
 * The backward carries the V class cotangents as extra rows: per (sample, head) every product is
 * one 2D matrix product with the V·T class rows stacked ([V·T, dh] × [dh, T] and so on), because
 * the per-sample q, k, v and p are shared by all classes. Only rank-4 transposes are used (wasm
 * falls back to a slow generic loop above rank 4).
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { attentionSimd, simdActive } from '../kernels/simd.js';
import { bmm } from './linalg.js';
import type { Ctx, Saved } from './types.js';

type Attention = Extract<Op, { kind: 'attention' }>;

/** [n, T, d] → [n·h, T, dh]. */
function splitHeads(x: tf.Tensor, h: number): tf.Tensor {
  const [n, t, d] = x.shape as [number, number, number];
  return tf.reshape(tf.transpose(tf.reshape(x, [n, t, h, d / h]), [0, 2, 1, 3]), [n * h, t, d / h]);
}

/** q, k, v of packed x [n, T, 3d], each [n·h, T, dh] (slices: wasm's SplitV copies x per part). */
function qkv(x: tf.Tensor, h: number): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const [n, t, d3] = x.shape as [number, number, number];
  const d = d3 / 3;
  return [0, 1, 2].map((i) => splitHeads(tf.slice(x, [0, 0, i * d], [n, t, d]), h)) as [tf.Tensor, tf.Tensor, tf.Tensor];
}

/**
 * Keeps the packed input and p for the backward, which splits q, k and v from it only when a
 * signal goes through (a head-only K never does).
 */
export function attentionForward(op: Attention, xIn: tf.Tensor): Saved {
  const lead = xIn.shape.slice(0, -2);
  const x = xIn.rank === 3 ? xIn : tf.reshape(xIn, [-1, ...xIn.shape.slice(-2)]);
  const [n, t, d3] = x.shape as [number, number, number];
  const h = op.heads;
  const d = d3 / 3;
  const dh = d / h;
  if (simdActive()) {
    const { out, p } = attentionSimd(x as tf.Tensor3D, h);
    return { out: lead.length === 1 ? out : tf.reshape(out, [...lead, t, d]), p, extra: { x: x.clone() } };
  }
  const [q, k, v] = qkv(x, h);
  const p = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), -1);
  const o = tf.matMul(p, v); // [n·h, T, dh]
  const out = tf.reshape(tf.transpose(tf.reshape(o, [n, h, t, dh]), [0, 2, 1, 3]), [...lead, t, d]);
  return { out, p, extra: { x: x.clone() } };
}

/** δ [n, …, T, V, d] → [n, …, T, V, 3d]. */
export function attentionBackward(op: Attention, saved: Saved, dyIn: tf.Tensor, ctx: Ctx): tf.Tensor {
  const lead = dyIn.shape.slice(0, -3);
  const dy = dyIn.rank === 4 ? dyIn : tf.reshape(dyIn, [-1, ...dyIn.shape.slice(-3)]);
  const [n, t, V, d] = dy.shape as [number, number, number, number];
  const h = op.heads;
  const dh = d / h;
  const b = n * h;
  const scale = 1 / Math.sqrt(dh);
  const [q, k, v] = qkv(saved.extra?.x as tf.Tensor, h);
  const p = saved.p as tf.Tensor;
  const vT = tf.transpose(v, [0, 2, 1]);
  // [n, T, V, d] → [n, V·T, h, dh] → [n·h, V·T, dh]
  const byClass = tf.reshape(tf.transpose(dy, [0, 2, 1, 3]), [n, V * t, h, dh]);
  const dO = tf.reshape(tf.transpose(byClass, [0, 2, 1, 3]), [b, V * t, dh]);
  const dP = tf.reshape(bmm(dO, vT, ctx.loopMatMul), [b, V, t, t]);
  const pc = tf.reshape(p, [b, 1, t, t]);
  const dS = tf.mul(pc, tf.sub(dP, tf.sum(tf.mul(dP, pc), -1, true)));
  const dQ = tf.mul(bmm(tf.reshape(dS, [b, V * t, t]), k, ctx.loopMatMul), scale);
  const dST = tf.reshape(tf.transpose(dS, [0, 1, 3, 2]), [b, V * t, t]);
  const dK = tf.mul(bmm(dST, q, ctx.loopMatMul), scale);
  // dV_c = pᵀ dO_c, computed as (dO_cᵀ p)ᵀ so that the shared p is the packed operand.
  const dOT = tf.reshape(tf.transpose(tf.reshape(dO, [b, V, t, dh]), [0, 1, 3, 2]), [b, V * dh, t]);
  const dVT = tf.reshape(bmm(dOT, p, ctx.loopMatMul), [b, V, dh, t]);
  const dV = tf.reshape(tf.transpose(dVT, [0, 1, 3, 2]), [b, V * t, dh]);
  // [n·h, V·T, dh] → [n, V, T, d]
  const merge = (g: tf.Tensor) => tf.reshape(tf.transpose(tf.reshape(g, [n, h, V * t, dh]), [0, 2, 1, 3]), [n, V, t, d]);
  const packed = tf.concat([merge(dQ), merge(dK), merge(dV)], 3); // [n, V, T, 3d]
  const dx = tf.transpose(packed, [0, 2, 1, 3]);
  return dyIn.rank === 4 ? dx : tf.reshape(dx, [...lead, t, V, 3 * d]);
}
