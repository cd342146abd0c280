/**
 * Ops that move or combine values without mixing channels: flatten, add, concatenate, the CLS
 * token, fixed positions and token selection. Their backward is a reshuffle of the signal.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { addPositions, prependToken, takeToken } from '../layers.js';
import { sumPositions } from './linalg.js';
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
  return { out: prependToken(x, op.token.read()) };
}

/** A slice [from, from + len) of the token axis of a signal [n, …, T, V, d]. */
function tokenSlice(dy: tf.Tensor, from: number, len: number): tf.Tensor {
  const axis = dy.rank - 3;
  const begin = dy.shape.map(() => 0);
  begin[axis] = from;
  const size = dy.shape.slice();
  size[axis] = len;
  return tf.slice(dy, begin, size);
}

/** δ [n, …, T+1, V, d] → δx [n, …, T, V, d]. */
export function classTokenBackward(dy: tf.Tensor): tf.Tensor {
  return tokenSlice(dy, 1, (dy.shape[dy.rank - 3] as number) - 1);
}

/** The token's gradient: the signal at position 0, summed over sequences (it is shared). */
export function classTokenGrads(op: ClassToken, dy: tf.Tensor, ctx: Ctx): Block[] {
  const param = ctx.paramOf(op.token);
  if (param === null) return [];
  return [{ kind: 'rows', param, rows: sumPositions(tokenSlice(dy, 0, 1)) }];
}

export function positionForward(x: tf.Tensor): Saved {
  return { out: addPositions(x) };
}

export function takeTokenForward(op: TakeToken, x: tf.Tensor): Saved {
  return { out: takeToken(x, op.index) };
}

/** δ [n, …, V, d] → [n, …, T, V, d], zero except at the selected token. */
export function takeTokenBackward(op: TakeToken, x: tf.Tensor, dy: tf.Tensor): tf.Tensor {
  const t = x.shape[x.rank - 2] as number;
  const s = dy.shape;
  const e = tf.reshape(dy, [...s.slice(0, -2), 1, ...s.slice(-2)]);
  const pads: Array<[number, number]> = e.shape.map((): [number, number] => [0, 0]);
  pads[e.rank - 3] = [op.index, t - 1 - op.index];
  return tf.pad(e, pads);
}
