/**
 * Non-overlapping 1D pooling and global pooling. Max pooling keeps a one-hot mask of each
 * window's first maximum (the position tfjs's cpu kernel routes the gradient to) and routes the
 * signal itself, so the wasm `MaxPoolGrad` (wrong when a window's max is ≤ 0) is never used.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { fold, unfold } from './linalg.js';
import { isSeparable } from './signal.js';
import type { Saved, Signal } from './types.js';

type Pool = Extract<Op, { kind: 'pool1d' }>;
type GlobalPool = Extract<Op, { kind: 'globalPool1d' }>;

/** First-maximum one-hot along `axis` (moved last by the caller's layout). */
function firstMaxMask(x: tf.Tensor, axis: number): tf.Tensor {
  const depth = x.shape[axis] as number;
  const idx = tf.argMax(x, axis);
  // float32 on webgpu, whose int32 transpose compiles into an invalid shader on Dawn; int32
  // elsewhere, since tfjs-backend-wasm's OneHot writes int32 bits whatever dtype is asked.
  const hot = tf.oneHot(idx, depth, 1, 0, tf.getBackend() === 'webgpu' ? 'float32' : 'int32'); // [..., depth] with the window axis last
  const rank = hot.rank;
  const perm = [...Array(rank).keys()];
  perm.splice(axis, 0, rank - 1);
  perm.pop();
  return tf.transpose(hot, perm);
}

/** Pools the time axis of x [n, T, C], or of every sequence of x [n, G, T, C] (Mantis's patch means). */
export function poolForward(op: Pool, xIn: tf.Tensor): Saved {
  const x = fold(xIn, 2);
  const lead = xIn.shape.slice(0, -2);
  const [n, t, c] = x.shape as [number, number, number];
  const tOut = Math.floor(t / op.size);
  const used = tOut * op.size === t ? x : tf.slice(x, 0, [n, tOut * op.size, c]);
  const windows = tf.reshape(used, [n, tOut, op.size, c]);
  if (op.mode === 'avg') return { out: unfold(tf.mean(windows, 2), lead) };
  return { out: unfold(tf.max(windows, 2), lead), mask: firstMaxMask(windows, 2) };
}

/** Routes values [n, T', ...mid, C′] of each window back to its positions: [n, T, ...mid, C]. */
function spread(op: Pool, x: tf.Tensor, saved: Saved, d: tf.Tensor, mid: number[]): tf.Tensor {
  const [n, t, c] = x.shape as [number, number, number];
  const tOut = d.shape[1] as number;
  const cd = d.shape[d.rank - 1] as number;
  const d5 = tf.reshape(d, [n, tOut, 1, ...mid, cd]);
  const ones = mid.map(() => 1);
  const routed =
    op.mode === 'avg'
      ? tf.mul(d5, tf.fill([1, 1, op.size, ...ones, 1], 1 / op.size))
      : tf.mul(d5, tf.reshape(saved.mask as tf.Tensor, [n, tOut, op.size, ...ones, c]));
  const dx = tf.reshape(routed, [n, tOut * op.size, ...mid, routed.shape[routed.rank - 1] as number]);
  const rest = t - tOut * op.size;
  return rest > 0 ? tf.pad(dx, [[0, 0], [0, rest], ...mid.map((): [number, number] => [0, 0]), [0, 0]]) : dx;
}

/** δ [n, …, T', V, C] → [n, …, T, V, C]; a separable δ stays separable (m is routed). */
export function poolBackward(op: Pool, xIn: tf.Tensor, saved: Saved, dy: Signal): Signal {
  const x = fold(xIn, 2);
  const lead = xIn.shape.slice(0, -2);
  if (isSeparable(dy)) return { kind: 'separable', m: unfold(spread(op, x, saved, fold(dy.m, 2), []), lead), u: dy.u.clone() };
  return unfold(spread(op, x, saved, fold(dy, 3), [dy.shape[dy.rank - 2] as number]), lead);
}

export function globalPoolForward(op: GlobalPool, x: tf.Tensor): Saved {
  if (op.mode === 'avg') return { out: tf.mean(x, 1) };
  return { out: tf.max(x, 1), mask: firstMaxMask(x, 1) };
}

/** δ [n, V, C] → [n, T, V, C]; a separable δ stays separable. */
export function globalPoolBackward(op: GlobalPool, x: tf.Tensor, saved: Saved, dy: Signal): Signal {
  const [n, t, c] = x.shape as [number, number, number];
  if (isSeparable(dy)) {
    const cm = dy.m.shape[1] as number;
    const m3 = tf.reshape(dy.m, [n, 1, cm]);
    const m = op.mode === 'avg' ? tf.mul(m3, tf.fill([1, t, 1], 1 / t)) : tf.mul(m3, saved.mask as tf.Tensor);
    return { kind: 'separable', m, u: dy.u.clone() };
  }
  const V = dy.shape[1] as number;
  const d4 = tf.reshape(dy, [n, 1, V, c]);
  if (op.mode === 'avg') return tf.mul(d4, tf.fill([1, t, 1, 1], 1 / t));
  return tf.mul(d4, tf.reshape(saved.mask as tf.Tensor, [n, t, 1, c]));
}
