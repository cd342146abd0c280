/**
 * Non-overlapping 1D pooling and global pooling. Max pooling keeps a one-hot mask of each
 * window's first maximum (the position tfjs's cpu kernel routes the gradient to) and routes the
 * signal itself, so the wasm `MaxPoolGrad` (wrong when a window's max is ≤ 0) is never used.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import type { Saved } from './types.js';

type Pool = Extract<Op, { kind: 'pool1d' }>;
type GlobalPool = Extract<Op, { kind: 'globalPool1d' }>;

/** First-maximum one-hot along `axis` (moved last by the caller's layout). */
function firstMaxMask(x: tf.Tensor, axis: number): tf.Tensor {
  const depth = x.shape[axis] as number;
  const idx = tf.argMax(x, axis);
  const hot = tf.oneHot(idx, depth); // [..., depth] with the window axis last
  const rank = hot.rank;
  const perm = [...Array(rank).keys()];
  perm.splice(axis, 0, rank - 1);
  perm.pop();
  return tf.transpose(hot, perm);
}

export function poolForward(op: Pool, x: tf.Tensor): Saved {
  const [n, t, c] = x.shape as [number, number, number];
  const tOut = Math.floor(t / op.size);
  const used = tOut * op.size === t ? x : tf.slice(x, 0, [n, tOut * op.size, c]);
  const windows = tf.reshape(used, [n, tOut, op.size, c]);
  if (op.mode === 'avg') return { out: tf.mean(windows, 2) };
  return { out: tf.max(windows, 2), mask: firstMaxMask(windows, 2) };
}

/** δ [n, T', V, C] → [n, T, V, C]. */
export function poolBackward(op: Pool, x: tf.Tensor, saved: Saved, dy: tf.Tensor): tf.Tensor {
  const [n, t] = x.shape as [number, number, number];
  const [, tOut, V, c] = dy.shape as [number, number, number, number];
  const d5 = tf.reshape(dy, [n, tOut, 1, V, c]);
  const spread =
    op.mode === 'avg'
      ? tf.mul(d5, tf.fill([1, 1, op.size, 1, 1], 1 / op.size))
      : tf.mul(d5, tf.reshape(saved.mask as tf.Tensor, [n, tOut, op.size, 1, c]));
  const dx = tf.reshape(spread, [n, tOut * op.size, V, c]);
  const rest = t - tOut * op.size;
  return rest > 0 ? tf.pad(dx, [[0, 0], [0, rest], [0, 0], [0, 0]]) : dx;
}

export function globalPoolForward(op: GlobalPool, x: tf.Tensor): Saved {
  if (op.mode === 'avg') return { out: tf.mean(x, 1) };
  return { out: tf.max(x, 1), mask: firstMaxMask(x, 1) };
}

/** δ [n, V, C] → [n, T, V, C]. */
export function globalPoolBackward(op: GlobalPool, x: tf.Tensor, saved: Saved, dy: tf.Tensor): tf.Tensor {
  const [n, t, c] = x.shape as [number, number, number];
  const V = dy.shape[1] as number;
  const d4 = tf.reshape(dy, [n, 1, V, c]);
  if (op.mode === 'avg') return tf.mul(d4, tf.fill([1, t, 1, 1], 1 / t));
  return tf.mul(d4, tf.reshape(saved.mask as tf.Tensor, [n, t, 1, c]));
}
