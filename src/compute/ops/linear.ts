/**
 * Dense and Conv1D: forward, backward of the signal, and per-sample weight gradients rebuilt from
 * the layer input and the backprop signal at the pre-activation.
 */
import * as tf from '@tensorflow/tfjs';
import type { Activation, Op } from '../graph.js';
import { bmm, expandV, sumPositions } from './linalg.js';
import type { Block, Ctx, Saved } from './types.js';

type Dense = Extract<Op, { kind: 'dense' }>;
type Conv = Extract<Op, { kind: 'conv1d' }>;

/** Applies an activation and keeps its derivative (tfjs's own gradient of it, so exact). */
export function activate(act: Activation, z: tf.Tensor): Saved {
  if (act.kind === 'linear') return { out: z };
  const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => act.fn(t))(z);
  return { out: value, dact: grad };
}

/** δ at the pre-activation: δ ⊙ act′(z), broadcast over the class axis. */
function preActivation(saved: Saved, dy: tf.Tensor): tf.Tensor {
  return saved.dact === undefined ? dy : tf.mul(dy, expandV(saved.dact));
}

export function denseForward(op: Dense, x: tf.Tensor): Saved {
  const w = op.kernel.read();
  const din = w.shape[0] as number;
  const dout = w.shape[1] as number;
  let z = tf.reshape(tf.matMul(tf.reshape(x, [-1, din]), w as tf.Tensor2D), [...x.shape.slice(0, -1), dout]);
  if (op.bias !== null) z = tf.add(z, op.bias.read());
  return activate(op.act, z);
}

/** Returns [δx or null, δz] (δz is reused by the weight gradients). */
export function denseBackward(op: Dense, saved: Saved, dy: tf.Tensor, needInput: boolean): [tf.Tensor | null, tf.Tensor] {
  const dz = preActivation(saved, dy);
  if (!needInput) return [null, dz];
  const w = op.kernel.read();
  const din = w.shape[0] as number;
  const dout = w.shape[1] as number;
  const wt = tf.transpose(w);
  const dx = tf.reshape(tf.matMul(tf.reshape(dz, [-1, dout]), wt as tf.Tensor2D), [...dz.shape.slice(0, -1), din]);
  wt.dispose();
  return [dx, dz];
}

export function denseGrads(op: Dense, x: tf.Tensor, dz: tf.Tensor, ctx: Ctx): Block[] {
  const kernel = ctx.paramOf(op.kernel);
  const bias = ctx.paramOf(op.bias);
  if (kernel === null && bias === null) return [];
  if (x.rank === 2) return [{ kind: 'outer', kernel, bias, a: x.clone(), g: dz.clone() }];
  const blocks: Block[] = [];
  const din = x.shape[x.rank - 1] as number;
  const dout = dz.shape[dz.rank - 1] as number;
  const positions = x.size / ctx.n / din;
  if (kernel !== null) {
    // Per sample: [din, T] × [T, V·dout]; the class-inner layout makes both operands plain.
    const xt = tf.transpose(tf.reshape(x, [ctx.n, positions, din]), [0, 2, 1]);
    const g = bmm(xt, tf.reshape(dz, [ctx.n, positions, ctx.V * dout]), ctx.loopMatMul);
    blocks.push({ kind: 'grid', param: kernel, grid: tf.reshape(g, [ctx.n, din, ctx.V, dout]) });
  }
  if (bias !== null) blocks.push({ kind: 'rows', param: bias, rows: sumPositions(dz) });
  return blocks;
}

export function convForward(op: Conv, x: tf.Tensor): Saved {
  const w = op.kernel.read() as tf.Tensor3D;
  const xp = op.padBefore + op.padAfter > 0 ? tf.pad(x, [[0, 0], [op.padBefore, op.padAfter], [0, 0]]) : x;
  let z: tf.Tensor = tf.conv1d(xp as tf.Tensor3D, w, op.stride, 'valid');
  if (op.bias !== null) z = tf.add(z, op.bias.read());
  return activate(op.act, z);
}

/**
 * δx of a Conv1D as one forward convolution: the signal [n, T', V, Cout] is a 2D image (time ×
 * class) convolved with the flipped, transposed kernel [k, 1, Cout, Cin]; strides dilate it first.
 */
export function convBackward(op: Conv, x: tf.Tensor, saved: Saved, dy: tf.Tensor, needInput: boolean): [tf.Tensor | null, tf.Tensor] {
  const dz = preActivation(saved, dy);
  if (!needInput) return [null, dz];
  const w = op.kernel.read();
  const [k, cin, cout] = w.shape as [number, number, number];
  const [n, tOut, V] = dz.shape as [number, number, number, number];
  const tIn = x.shape[1] as number;
  let e = dz;
  if (op.stride > 1) {
    const s = op.stride;
    const spread = tf.pad(tf.reshape(dz, [n, tOut, 1, V * cout]), [[0, 0], [0, 0], [0, s - 1], [0, 0]]);
    e = tf.slice(tf.reshape(spread, [n, tOut * s, V, cout]), 0, [n, (tOut - 1) * s + 1, V, cout]);
  }
  // δx[v] = Σ_j e[v + padBefore − j] W[j]: a valid correlation of e, shifted by L and padded to
  // length tIn + k − 1, with the kernel flipped along time.
  const left = k - 1 - op.padBefore;
  const len = e.shape[1] as number;
  let lo = left;
  if (lo < 0) {
    e = tf.slice(e, [0, -lo, 0, 0], [n, len + lo, V, cout]);
    lo = 0;
  }
  let right = tIn + k - 1 - lo - (e.shape[1] as number);
  if (right < 0) {
    e = tf.slice(e, 0, [n, (e.shape[1] as number) + right, V, cout]);
    right = 0;
  }
  const filter = tf.reshape(tf.transpose(tf.reverse(w, 0), [0, 2, 1]), [k, 1, cout, cin]) as tf.Tensor4D;
  const dx = tf.conv2d(e as tf.Tensor4D, filter, 1, [[0, 0], [lo, right], [0, 0], [0, 0]]);
  filter.dispose();
  return [dx, dz];
}

/** im2col, transposed: [n, T, Cin] → [n, k·Cin, T'] with rows ordered (j, ci) like the kernel. */
function patchesT(op: Conv, x: tf.Tensor, k: number, tOut: number): tf.Tensor {
  const [n, , cin] = x.shape as [number, number, number];
  const xt = tf.transpose(x, [0, 2, 1]);
  const xp = op.padBefore + op.padAfter > 0 ? tf.pad(xt, [[0, 0], [0, 0], [op.padBefore, op.padAfter]]) : xt;
  const span = (tOut - 1) * op.stride + 1;
  const taps: tf.Tensor[] = [];
  for (let j = 0; j < k; j++) {
    taps.push(
      op.stride === 1
        ? tf.slice(xp, [0, 0, j], [n, cin, tOut])
        : tf.stridedSlice(xp, [0, 0, j], [n, cin, j + span], [1, 1, op.stride]),
    );
  }
  const p = tf.reshape(tf.stack(taps, 1), [n, k * cin, tOut]);
  tf.dispose(taps);
  return p;
}

export function convGrads(op: Conv, x: tf.Tensor, dz: tf.Tensor, ctx: Ctx): Block[] {
  const kernel = ctx.paramOf(op.kernel);
  const bias = ctx.paramOf(op.bias);
  const blocks: Block[] = [];
  if (kernel !== null) {
    const [k, cin, cout] = op.kernel.shape as [number, number, number];
    const tOut = dz.shape[1] as number;
    const pt = patchesT(op, x, k, tOut);
    const g = bmm(pt, tf.reshape(dz, [ctx.n, tOut, ctx.V * cout]), ctx.loopMatMul);
    blocks.push({ kind: 'grid', param: kernel, grid: tf.reshape(g, [ctx.n, k * cin, ctx.V, cout]) });
  }
  if (bias !== null) blocks.push({ kind: 'rows', param: bias, rows: sumPositions(dz) });
  return blocks;
}
