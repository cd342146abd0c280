/** Small tensor helpers shared by the ops: class-axis insertion and batched products. */
import * as tf from '@tensorflow/tfjs';

/** [..., C] → [..., 1, C]: an activation broadcast against a class-inner signal. */
export function expandV(t: tf.Tensor): tf.Tensor {
  const s = t.shape;
  return tf.reshape(t, [...s.slice(0, -1), 1, s[s.length - 1] as number]);
}

/**
 * Batched product a[i] × b[i] for a [n, m, k], b [n, k, p] → [n, m, p]. On wasm only the plain
 * 2D product runs on XNNPACK (≈20 GFLOP/s against ≈2 for the batched kernel), so it loops.
 */
export function bmm(a: tf.Tensor, b: tf.Tensor, loop: boolean): tf.Tensor {
  const n = a.shape[0] as number;
  if (!loop || n === 1) return tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D);
  const as = tf.unstack(a);
  const bs = tf.unstack(b);
  const out = as.map((ai, i) => tf.matMul(ai as tf.Tensor2D, bs[i] as tf.Tensor2D));
  const r = tf.stack(out);
  tf.dispose([...as, ...bs, ...out]);
  return r;
}

/** Sum over every axis between the batch axis and the class axis: [n, ...S, V, C] → [n, V, C]. */
export function sumPositions(t: tf.Tensor): tf.Tensor {
  const s = t.shape;
  if (s.length === 3) return t.clone();
  const n = s[0] as number;
  const vc = s.slice(-2) as [number, number];
  const positions = s.slice(1, -2).reduce((a, b) => a * b, 1);
  const flat = tf.reshape(t, [n, positions, vc[0] * vc[1]]);
  return tf.reshape(tf.sum(flat, 1), [n, ...vc]);
}

/**
 * Folds every axis before the last `keep` into the first: [n, G, …, (keep axes)] → [n·G·…,
 * (keep axes)]. Ops written for one sequence per sample run on Mantis's one sequence per channel
 * ([n, G, T, C]) this way; `unfold` restores the leading axes.
 */
export function fold(t: tf.Tensor, keep: number): tf.Tensor {
  return t.rank === keep + 1 ? t : tf.reshape(t, [-1, ...t.shape.slice(-keep)]);
}

/** The inverse of `fold`: [n·G·…, (rest)] → [...lead, (rest)]. */
export function unfold(t: tf.Tensor, lead: number[]): tf.Tensor {
  return lead.length === 1 ? t : tf.reshape(t, [...lead, ...t.shape.slice(1)]);
}
