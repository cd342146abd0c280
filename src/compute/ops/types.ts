/**
 * Shared shapes of the fast path.
 *
 * Layout of a backprop signal ("class-inner"): the activation's shape with the V class
 * cotangents inserted before the channel axis, [n, ...positions, V, C]. The class axis sits next
 * to the channels so that a Conv1D backward is one 2D convolution (kernel width 1 over the class
 * axis) and a per-sample weight gradient is one plain matrix product [k·Cin, T] × [T, V·Cout].
 */
import type * as tf from '@tensorflow/tfjs';

/** What the forward pass keeps for the backward pass of one op. */
export interface Saved {
  out: tf.Tensor;
  /** Normalised input of a LayerNormalization, and 1/σ ([..., 1]). */
  xhat?: tf.Tensor;
  rstd?: tf.Tensor;
  /** One-hot of the winning position of max pooling, [n, T', size, C] or [n, T, C]. */
  mask?: tf.Tensor;
  /** Attention probabilities [n·h, T, T] (its packed input is in `extra`). */
  p?: tf.Tensor;
  /** Anything else an op's backward reuses (released with the rest): an activation's
   *  pre-activation `z`, attention's packed input `x`. */
  extra?: Record<string, tf.Tensor>;
}

/**
 * Per-sample, per-class gradients of the logits with respect to one trainable weight, i.e. that
 * weight's block of columns of J. Three representations, each cheapest for some consumer:
 * - rows: [n, V, size], row c is ∂z_c/∂w flattened in the weight's row-major order.
 * - linear: a kernel W [r, cols] (Conv1D: r = k·Cin) and its bias, as the per-sample product
 *   g = δᵀ·[patches | 1], [n, V, cols, r (+1 with a bias)]: ∂z_c/∂W[i, o] = g[:, c, o, i] and
 *   ∂z_c/∂b[o] = g[:, c, o, r]. Transposed against J's column order, because that is the layout
 *   XNNPACK builds fastest (the small [T, r+1] operand is the one it packs).
 * - sepLinear: the same for a separable signal (below): g[s, c, o, i] = u[c, o]·q[s, o, i] with
 *   q [n, cols, r(+1)] and u [V, cols], one product per sample instead of V.
 * - outer: a Dense layer on flat features, ∂z_c/∂W = a ⊗ g_c and ∂z_c/∂b = g_c, with
 *   a [n, din] and g [n, V, dout]; never materialised unless a consumer needs rows.
 */
export type Block =
  | { kind: 'rows'; param: number; rows: tf.Tensor }
  | { kind: 'sepLinear'; kernel: number; bias: number | null; q: tf.Tensor; u: tf.Tensor }
  | { kind: 'linear'; kernel: number; bias: number | null; g: tf.Tensor }
  | { kind: 'outer'; kernel: number | null; bias: number | null; a: tf.Tensor; g: tf.Tensor };

/**
 * A signal that factors over samples and classes per channel: δ[s, ...p, c, ch] = m[s, ...p, ch]
 * · u[c, ch], with m [n, ...positions, C or 1] and u [V, C]. It is what reaches a layer through a
 * linear head, global pooling, pooling and elementwise activations (a GAP-headed CNN's last
 * convolution): its weight gradients then cost one product per sample instead of V. `dense`
 * caches the materialised form.
 */
export interface Separable {
  kind: 'separable';
  m: tf.Tensor;
  u: tf.Tensor;
  dense?: tf.Tensor;
}

/** A backprop signal: class-inner [n, ...positions, V, C], or separable. */
export type Signal = tf.Tensor | Separable;

/** Per-chunk context of the backward pass. */
export interface Ctx {
  /** Samples in the chunk. */
  n: number;
  /** Classes. */
  V: number;
  /** Param index of a weight variable (by LayerVariable id), for those in the subset. */
  paramOf: (variable: tf.LayerVariable | null) => number | null;
  /** Whether per-sample matrix products should loop over samples (wasm: XNNPACK is 2D only). */
  loopMatMul: boolean;
}
