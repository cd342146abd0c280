/**
 * Dense and Conv1D: forward, backward of the signal, and per-sample weight gradients rebuilt from
 * the layer input and the backprop signal at the pre-activation.
 */
import * as tf from '@tensorflow/tfjs';
import type { Activation, Op } from '../graph.js';
import { geluSimd, simdActive } from '../kernels/simd.js';
import { bmm, expandV, fold, sumPositions, unfold } from './linalg.js';
import { fullM, isSeparable, materialize } from './signal.js';
import { transposedKernel } from './transposed-kernels.js';
import type { Block, Ctx, Saved, Signal } from './types.js';

type Dense = Extract<Op, { kind: 'dense' }>;
type Conv = Extract<Op, { kind: 'conv1d' }>;

/**
 * Applies an activation and keeps the pre-activation z: its derivative is taken only when a
 * signal goes back through (a head-only K never sends one into the encoder, where the GELU
 * derivative cost as much as the GELU).
 */
export function activate(act: Activation, z: tf.Tensor): Saved {
  if (act.kind === 'linear') return { out: z };
  // GELU in one wasm pass (kernels/gelu.wat); its derivative (backward only) stays tfjs's.
  const out = act.name === 'gelu' && z.dtype === 'float32' && simdActive() ? geluSimd(z) : act.fn(z);
  // A view (no copy), never z itself: z may be another op's output, released with that op.
  return { out, extra: { z: tf.reshape(z, z.shape) } };
}

/** act′(z) at the saved pre-activation (tfjs's own gradient of it, so exact); undefined when linear. */
function derivative(act: Activation, saved: Saved): tf.Tensor | undefined {
  const z = saved.extra?.z;
  if (act.kind === 'linear' || z === undefined) return undefined;
  return tf.grad((t: tf.Tensor) => act.fn(t))(z);
}

/** δ ⊙ act′(z), broadcast over the class axis; a separable signal stays separable. */
export function throughActivation(act: Activation, saved: Saved, dy: Signal): Signal {
  const dact = derivative(act, saved);
  if (dact === undefined) return dy;
  if (isSeparable(dy)) return { kind: 'separable', m: tf.mul(dy.m, dact), u: dy.u.clone() };
  return tf.mul(dy, expandV(dact));
}

export function denseForward(op: Dense, x: tf.Tensor): Saved {
  const w = op.kernel.read();
  const din = w.shape[0] as number;
  const dout = w.shape[1] as number;
  // The bias added inside the product (XNNPACK starts its sums from it), as tf.layers.dense does.
  const flat = tf.fused.matMul({ a: tf.reshape(x, [-1, din]) as tf.Tensor2D, b: w as tf.Tensor2D, bias: op.bias === null ? undefined : op.bias.read() });
  return activate(op.act, tf.reshape(flat, [...x.shape.slice(0, -1), dout]));
}

/** Returns [δx or null, δz] (δz is reused by the weight gradients). */
export function denseBackward(op: Dense, saved: Saved, dy: Signal, needInput: boolean): [Signal | null, Signal] {
  const dz = throughActivation(op.act, saved, dy);
  if (!needInput) return [null, dz];
  const wt = transposedKernel(op.kernel);
  const [dout, din] = wt.shape;
  if (isSeparable(dz) && dz.m.shape[dz.m.rank - 1] === 1) {
    // m does not depend on the channel: δx = m ⊗ (u Wᵀ), still separable.
    return [{ kind: 'separable', m: dz.m.clone(), u: tf.matMul(dz.u as tf.Tensor2D, wt) }, dz];
  }
  const d = materialize(dz);
  return [tf.reshape(tf.matMul(tf.reshape(d, [-1, dout]), wt), [...d.shape.slice(0, -1), din]), dz];
}

/**
 * Per-sample weight gradients of a kernel applied at every position: with δ [n, T, V, cols] and
 * the layer input as rows x [n, T, r], g_s = δ_sᵀ [V·cols, T] × [x_s | 1] [T, r+1]. A separable δ
 * needs q_s = m_sᵀ [cols, T] × [x_s | 1] only.
 */
function linearBlock(kernel: number | null, bias: number | null, x: tf.Tensor, dz: Signal, ctx: Ctx): Block[] {
  const [n, t] = x.shape as [number, number, number];
  if (kernel === null) return bias === null ? [] : [{ kind: 'rows', param: bias, rows: sumPositions(materialize(dz)) }];
  // The bias is one more input column of ones.
  const x1 = bias === null ? x : tf.pad(x, [[0, 0], [0, 0], [0, 1]], 1);
  if (isSeparable(dz)) {
    const mt = tf.transpose(tf.reshape(fullM(dz), [n, t, -1]), [0, 2, 1]);
    return [{ kind: 'sepLinear', kernel, bias, q: bmm(mt, x1, ctx.loopMatMul), u: dz.u.clone() }];
  }
  const cols = dz.shape[dz.rank - 1] as number;
  const dt = tf.reshape(tf.transpose(tf.reshape(dz, [n, t, ctx.V, cols]), [0, 2, 3, 1]), [n, ctx.V * cols, t]);
  const g = bmm(dt, x1, ctx.loopMatMul);
  return [{ kind: 'linear', kernel, bias, g: tf.reshape(g, [n, ctx.V, cols, x1.shape[2] as number]) }];
}

export function denseGrads(op: Dense, x: tf.Tensor, dz: Signal, ctx: Ctx): Block[] {
  const kernel = ctx.paramOf(op.kernel);
  const bias = ctx.paramOf(op.bias);
  if (kernel === null && bias === null) return [];
  if (x.rank === 2) return [{ kind: 'outer', kernel, bias, a: x.clone(), g: materialize(dz).clone() }];
  const din = x.shape[x.rank - 1] as number;
  return linearBlock(kernel, bias, tf.reshape(x, [ctx.n, -1, din]), dz, ctx);
}

/**
 * Conv1D over the time axis of x [n, T, Cin], or of every sequence of x [n, G, T, Cin] (Mantis's
 * per-channel series, shared weights): leading axes are folded into the batch.
 */
export function convForward(op: Conv, xIn: tf.Tensor): Saved {
  const w = op.kernel.read() as tf.Tensor3D;
  const x = fold(xIn, 2);
  const xp = op.padBefore + op.padAfter > 0 ? tf.pad(x, [[0, 0], [op.padBefore, op.padAfter], [0, 0]]) : x;
  let z: tf.Tensor = unfold(tf.conv1d(xp as tf.Tensor3D, w, op.stride, 'valid'), xIn.shape.slice(0, -2));
  if (op.bias !== null) z = tf.add(z, op.bias.read());
  return activate(op.act, z);
}

/**
 * δx of a Conv1D as one forward convolution: the signal [n, T', V, Cout] is a 2D image (time ×
 * class) convolved with the flipped, transposed kernel [k, 1, Cout, Cin]; strides dilate it first.
 */
export function convBackward(op: Conv, xIn: tf.Tensor, saved: Saved, dy: Signal, needInput: boolean): [tf.Tensor | null, Signal] {
  const dzs = throughActivation(op.act, saved, dy);
  if (!needInput) return [null, dzs];
  const x = fold(xIn, 2);
  const dz = fold(materialize(dzs), 3);
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
  // Explicit zeros and a 'valid' convolution: explicit conv padding is not on every backend.
  const ep = lo + right > 0 ? tf.pad(e, [[0, 0], [lo, right], [0, 0], [0, 0]]) : e;
  const dx = tf.conv2d(ep as tf.Tensor4D, filter, 1, 'valid');
  filter.dispose();
  return [unfold(dx, xIn.shape.slice(0, -2)), dzs];
}

/** im2col: [n, T, Cin] → [n, T', k·Cin], columns ordered (j, ci) like the kernel's rows. */
function patches(op: Conv, x: tf.Tensor, k: number, tOut: number): tf.Tensor {
  const [n, tIn, cin] = x.shape as [number, number, number];
  if (op.stride === k && op.padBefore + op.padAfter === 0) {
    // Non-overlapping windows (patch embedding): the patches are a reshape.
    const used = tOut * k === tIn ? x : tf.slice(x, 0, [n, tOut * k, cin]);
    return tf.reshape(used, [n, tOut, k * cin]);
  }
  const xp = op.padBefore + op.padAfter > 0 ? tf.pad(x, [[0, 0], [op.padBefore, op.padAfter], [0, 0]]) : x;
  const span = (tOut - 1) * op.stride + 1;
  const taps: tf.Tensor[] = [];
  for (let j = 0; j < k; j++) {
    taps.push(
      op.stride === 1
        ? tf.slice(xp, [0, j, 0], [n, tOut, cin])
        : tf.stridedSlice(xp, [0, j, 0], [n, j + span, cin], [1, op.stride, 1]),
    );
  }
  const p = tf.reshape(tf.stack(taps, 2), [n, tOut, k * cin]);
  tf.dispose(taps);
  return p;
}

export function convGrads(op: Conv, x: tf.Tensor, dz: Signal, ctx: Ctx): Block[] {
  const kernel = ctx.paramOf(op.kernel);
  const bias = ctx.paramOf(op.bias);
  if (kernel === null && bias === null) return [];
  const k = op.kernel.shape[0] as number;
  const tOut = op.shape[op.shape.length - 2] as number;
  // Shared weights over a sample's sequences: their positions are summed like time steps.
  const p = patches(op, fold(x, 2), k, tOut);
  return linearBlock(kernel, bias, x.rank === 3 ? p : tf.reshape(p, [ctx.n, -1, p.shape[2] as number]), dz, ctx);
}
