/**
 * Layers the fast path does not know. Exact, through tfjs autodiff of the layer itself:
 * - the signal: one gradient over the chunk with every sample repeated once per class (valid
 *   because a layer at inference maps each sample independently);
 * - the layer's own weights: one `variableGrads` per (sample, class) — the slow part, which is
 *   why the engine reports the layers it sent here.
 */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import type { Block, Ctx, Saved } from './types.js';

type Generic = Extract<Op, { kind: 'generic' }>;

function apply(op: Generic, xs: tf.Tensor[]): tf.Tensor {
  const layer = op.layer;
  if (layer === null) throw new Error(`generic op ${op.name} has no layer`);
  const out = layer.apply(xs.length === 1 ? (xs[0] as tf.Tensor) : xs, { training: false });
  if (Array.isArray(out) || !(out instanceof tf.Tensor)) throw new Error(`layer ${op.name} must return one tensor`);
  return out;
}

export function genericForward(op: Generic, xs: tf.Tensor[]): Saved {
  const out = apply(op, xs);
  // The backward releases each op's output when done; never let that be an input's tensor.
  return { out: xs.includes(out) ? out.clone() : out };
}

/** Class-inner [n, ...S, V, C] → class-outer [n·V, ...S, C]. */
function classOuter(dy: tf.Tensor): tf.Tensor {
  const r = dy.rank;
  const perm = [0, r - 2, ...Array.from({ length: r - 3 }, (_, i) => i + 1), r - 1];
  const t = tf.transpose(dy, perm);
  return tf.reshape(t, [-1, ...t.shape.slice(2)]);
}

/** [n·V, ...S, C] → [n, ...S, V, C]. */
function classInner(t: tf.Tensor, n: number, V: number): tf.Tensor {
  const g = tf.reshape(t, [n, V, ...t.shape.slice(1)]);
  const r = g.rank;
  const perm = [0, ...Array.from({ length: r - 3 }, (_, i) => i + 2), 1, r - 1];
  return tf.transpose(g, perm);
}

function repeatPerClass(x: tf.Tensor, V: number): tf.Tensor {
  const n = x.shape[0] as number;
  const rest = x.shape.slice(1);
  const rep = tf.add(tf.reshape(x, [n, 1, ...rest]), tf.zeros([1, V, ...rest.map(() => 1)]));
  return tf.reshape(rep, [n * V, ...rest]);
}

export function genericBackward(op: Generic, xs: tf.Tensor[], dy: tf.Tensor, need: boolean[], ctx: Ctx): Array<tf.Tensor | null> {
  if (!need.some(Boolean)) return xs.map(() => null);
  const dyOuter = classOuter(dy);
  const reps = xs.map((x) => repeatPerClass(x, ctx.V));
  const grads = tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(apply(op, ins), dyOuter)))(reps);
  return grads.map((g, i) => (need[i] ? classInner(g, ctx.n, ctx.V) : null));
}

export function genericGrads(op: Generic, xs: tf.Tensor[], dy: tf.Tensor, ctx: Ctx): Block[] {
  const weights = (op.layer?.trainableWeights ?? []).filter((w) => ctx.paramOf(w) !== null);
  if (weights.length === 0) return [];
  const vars = weights.map((w) => w.read() as tf.Variable);
  const dyOuter = classOuter(dy); // [n·V, ...]
  const rows: tf.Tensor[][] = weights.map(() => []);
  for (let s = 0; s < ctx.n; s++) {
    const xsS = xs.map((x) => tf.slice(x, s, 1));
    for (let c = 0; c < ctx.V; c++) {
      const cot = tf.slice(dyOuter, s * ctx.V + c, 1);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(apply(op, xsS), cot)) as tf.Scalar, vars);
      weights.forEach((w, i) => (rows[i] as tf.Tensor[]).push(tf.reshape(grads[(w.read() as tf.Variable).name] as tf.Tensor, [-1])));
      tf.dispose(Object.values(grads));
      cot.dispose();
    }
    tf.dispose(xsS);
  }
  return weights.map((w, i) => ({
    kind: 'rows',
    param: ctx.paramOf(w) as number,
    rows: tf.reshape(tf.stack(rows[i] as tf.Tensor[]), [ctx.n, ctx.V, -1]),
  }));
}
