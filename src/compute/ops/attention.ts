/**
 * The weightless core of multi-head self-attention (layer `SelfAttention`): packed [q | k | v]
 * [n, T, 3d] → softmax(q kᵀ/√dh) v, heads merged, [n, T, d]. The backward runs all V class
 * cotangents at once as a class axis broadcast against the per-sample q, k, v and p.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import type { Saved } from './types.js';

type Attention = Extract<Op, { kind: 'attention' }>;

export function attentionForward(op: Attention, x: tf.Tensor): Saved {
  const [n, t, d3] = x.shape as [number, number, number];
  const h = op.heads;
  const dh = d3 / 3 / h;
  const qkv = tf.transpose(tf.reshape(x, [n, t, 3, h, dh]), [2, 0, 3, 1, 4]);
  const [q, k, v] = tf.unstack(qkv, 0) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const p = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), -1);
  const o = tf.matMul(p, v);
  const out = tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [n, t, d3 / 3]);
  return { out, q, k, v, p };
}

/** δ [n, T, V, d] → [n, T, V, 3d]. */
export function attentionBackward(op: Attention, saved: Saved, dy: tf.Tensor): tf.Tensor {
  const [n, t, V, d] = dy.shape as [number, number, number, number];
  const h = op.heads;
  const dh = d / h;
  const scale = 1 / Math.sqrt(dh);
  // tfjs batched matMul broadcasts by index modulo the smaller batch, which is only right when
  // the broadcast axes lead: so the class axis goes first here, [V, n, h, T, ·].
  const withClass = (a: tf.Tensor) => tf.expandDims(a, 0); // [1, n, h, T, ·]
  const q = withClass(saved.q as tf.Tensor);
  const k = withClass(saved.k as tf.Tensor);
  const v = withClass(saved.v as tf.Tensor);
  const p = withClass(saved.p as tf.Tensor);
  // [n, T, V, h, dh] → [V, n, h, T, dh]
  const dO = tf.transpose(tf.reshape(dy, [n, t, V, h, dh]), [2, 0, 3, 1, 4]);
  const dP = tf.matMul(dO, v, false, true);
  const dV = tf.matMul(p, dO, true, false);
  const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true)));
  const dQ = tf.mul(tf.matMul(dS, k), scale);
  const dK = tf.mul(tf.matMul(dS, q, true, false), scale);
  // [3, V, n, h, T, dh] → [n, T, V, 3, h, dh]
  const packed = tf.transpose(tf.stack([dQ, dK, dV]), [2, 4, 1, 0, 3, 5]);
  return tf.reshape(packed, [n, t, V, 3 * d]);
}
