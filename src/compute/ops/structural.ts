/**
 * Ops that move or combine values without mixing channels: flatten, add, concatenate, the CLS
 * token, fixed positions and token selection. Their backward is a reshuffle of the signal.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { sinusoidalCode } from '../layers.js';
import type { Block, Ctx, Saved } from './types.js';

type ClassToken = Extract<Op, { kind: 'classToken' }>;
type TakeToken = Extract<Op, { kind: 'takeToken' }>;

export function flattenForward(x: tf.Tensor): Saved {
  return { out: tf.reshape(x, [x.shape[0] as number, -1]) };
}

/** δ [n, V, Π S·C] → [n, ...S, V, C]. */
export function flattenBackward(x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  if (x.rank === 2) return dy.clone();
  const V = dy.shape[1] as number;
  const s = x.shape;
  const r = s.length; // x is [n, ...S, C]; the class axis goes just before C
  const grid = tf.reshape(dy, [s[0] as number, V, ...s.slice(1)]);
  const perm = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1, r];
  return tf.transpose(grid, perm);
}

export function concatForward(xs: tf.Tensor[]): Saved {
  return { out: tf.concat(xs, -1) };
}

export function concatBackward(xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  return tf.split(dy, xs.map((x) => x.shape[x.rank - 1] as number), -1);
}

export function classTokenForward(op: ClassToken, x: tf.Tensor): Saved {
  const [n, , d] = x.shape as [number, number, number];
  const tok = tf.add(tf.zeros([n, 1, d]), tf.reshape(op.token.read(), [1, 1, d]));
  return { out: tf.concat([tok, x], 1) };
}

/** δ [n, T+1, V, d] → δx [n, T, V, d]. */
export function classTokenBackward(dy: tf.Tensor): tf.Tensor {
  const [n, t1, V, d] = dy.shape as [number, number, number, number];
  return tf.slice(dy, [0, 1, 0, 0], [n, t1 - 1, V, d]);
}

export function classTokenGrads(op: ClassToken, dy: tf.Tensor, ctx: Ctx): Block[] {
  const param = ctx.paramOf(op.token);
  if (param === null) return [];
  const [n, , V, d] = dy.shape as [number, number, number, number];
  return [{ kind: 'rows', param, rows: tf.reshape(tf.slice(dy, 0, [n, 1, V, d]), [n, V, d]) }];
}

export function positionForward(x: tf.Tensor): Saved {
  const [, t, d] = x.shape as [number, number, number];
  return { out: tf.add(x, tf.tensor3d(sinusoidalCode(t, d), [1, t, d])) };
}

export function takeTokenForward(op: TakeToken, x: tf.Tensor): Saved {
  const [n, , d] = x.shape as [number, number, number];
  return { out: tf.reshape(tf.slice(x, [0, op.index, 0], [n, 1, d]), [n, d]) };
}

/** δ [n, V, d] → [n, T, V, d], zero except at the selected token. */
export function takeTokenBackward(op: TakeToken, x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const t = x.shape[1] as number;
  const [n, V, d] = dy.shape as [number, number, number];
  return tf.pad(tf.reshape(dy, [n, 1, V, d]), [[0, 0], [op.index, t - 1 - op.index], [0, 0], [0, 0]]);
}
