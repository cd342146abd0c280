/**
 * LayerNormalization over the channel axis, and BatchNormalization at inference (a per-channel
 * affine map with the moving statistics): forward, signal backward and γ/β gradients.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { layerNormSimd, simdActive } from '../kernels/simd.js';
import { expandV, sumPositions } from './linalg.js';
import { isSeparable, materialize } from './signal.js';
import type { Block, Ctx, Saved, Signal } from './types.js';

type LayerNorm = Extract<Op, { kind: 'layerNorm' }>;
type BatchNorm = Extract<Op, { kind: 'batchNorm' }>;

export function layerNormForward(op: LayerNorm, x: tf.Tensor): Saved {
  if (simdActive() && x.dtype === 'float32') return layerNormSimd(x, op.epsilon, op.gamma?.read(), op.beta?.read());
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  const rstd = tf.rsqrt(tf.add(variance, op.epsilon));
  const xhat = tf.mul(tf.sub(x, mean), rstd);
  let out = xhat;
  if (op.gamma !== null) out = tf.mul(out, op.gamma.read());
  if (op.beta !== null) out = tf.add(out, op.beta.read());
  return { out, xhat, rstd };
}

/** δx = (1/σ)(δx̂ − mean(δx̂) − x̂·mean(δx̂ ⊙ x̂)) with δx̂ = δy ⊙ γ; δ is [n, ...S, V, C]. */
export function layerNormBackward(op: LayerNorm, saved: Saved, dy: tf.Tensor): tf.Tensor {
  const xhat = expandV(saved.xhat as tf.Tensor);
  const rstd = expandV(saved.rstd as tf.Tensor);
  const axis = dy.rank - 1;
  const dxhat = op.gamma === null ? dy : tf.mul(dy, op.gamma.read());
  const m1 = tf.mean(dxhat, axis, true);
  const m2 = tf.mean(tf.mul(dxhat, xhat), axis, true);
  return tf.mul(tf.sub(tf.sub(dxhat, m1), tf.mul(xhat, m2)), rstd);
}

export function layerNormGrads(op: LayerNorm, saved: Saved, dy: tf.Tensor, ctx: Ctx): Block[] {
  const blocks: Block[] = [];
  const gamma = ctx.paramOf(op.gamma);
  const beta = ctx.paramOf(op.beta);
  if (gamma !== null) {
    blocks.push({ kind: 'rows', param: gamma, rows: sumPositions(tf.mul(dy, expandV(saved.xhat as tf.Tensor))) });
  }
  if (beta !== null) blocks.push({ kind: 'rows', param: beta, rows: sumPositions(dy) });
  return blocks;
}

/** 1/√(σ² + ε) for each channel, times γ when there is one. */
function batchNormScale(op: BatchNorm): tf.Tensor {
  const r = tf.rsqrt(tf.add(op.variance.read(), op.epsilon));
  return op.gamma === null ? r : tf.mul(r, op.gamma.read());
}

export function batchNormForward(op: BatchNorm, x: tf.Tensor): Saved {
  const xhat = tf.mul(tf.sub(x, op.mean.read()), tf.rsqrt(tf.add(op.variance.read(), op.epsilon)));
  let out = op.gamma === null ? xhat : tf.mul(xhat, op.gamma.read());
  if (op.beta !== null) out = tf.add(out, op.beta.read());
  return { out, xhat };
}

/** δx = δ ⊙ γ/√(σ² + ε), per channel: a separable signal stays separable. */
export function batchNormBackward(op: BatchNorm, dy: Signal): Signal {
  const scale = batchNormScale(op);
  if (isSeparable(dy)) return { kind: 'separable', m: tf.mul(dy.m, scale), u: dy.u.clone() };
  return tf.mul(dy, scale);
}

export function batchNormGrads(op: BatchNorm, saved: Saved, dy: Signal, ctx: Ctx): Block[] {
  const blocks: Block[] = [];
  const gamma = ctx.paramOf(op.gamma);
  const beta = ctx.paramOf(op.beta);
  const d = materialize(dy);
  if (gamma !== null) blocks.push({ kind: 'rows', param: gamma, rows: sumPositions(tf.mul(d, expandV(saved.xhat as tf.Tensor))) });
  if (beta !== null) blocks.push({ kind: 'rows', param: beta, rows: sumPositions(d) });
  return blocks;
}
