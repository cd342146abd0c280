/**
 * What J blocks turn into: per-sample self-kernels K(x, x) = J Jᵀ, and J's rows over the subset.
 * Call inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs';
import { gram } from './gram.js';
import type { Block } from './ops/types.js';

/** K(x, x) for each sample of the chunk, [n, V, V], summed over the blocks. */
export function selfKernelOf(blocks: Block[], n: number, V: number): tf.Tensor3D {
  const parts: tf.Tensor[] = blocks.map((b) => {
    switch (b.kind) {
      case 'linear':
        // Column order does not matter to J Jᵀ: the kernel and bias in g's own layout.
        return gram(tf.reshape(b.g, [n, V, -1]));
      case 'rows':
        return gram(b.rows);
      case 'sepLinear': {
        // Σ_{o,i} u[c,o] u[c',o] q[o,i]² = (u ⊙ Σ_i q²) uᵀ.
        const [V2, cols] = b.u.shape as [number, number];
        const uq = tf.mul(tf.reshape(b.u, [1, V2, cols]), tf.expandDims(tf.sum(tf.square(b.q), 2), 1));
        return tf.reshape(tf.matMul(tf.reshape(uq, [n * V2, cols]), tf.transpose(b.u) as tf.Tensor2D), [n, V2, V2]);
      }
      case 'outer': {
        // (a·a + 1) g gᵀ: the kernel's outer products and the bias.
        const gg = gram(b.g);
        const aa = b.kernel === null ? tf.zeros([n]) : tf.sum(tf.square(b.a), 1);
        const scale = b.bias === null ? aa : tf.add(aa, 1);
        return tf.mul(gg, tf.reshape(scale, [n, 1, 1]));
      }
    }
  });
  if (parts.length === 0) return tf.zeros([n, V, V]);
  return (parts.length === 1 ? parts[0] : tf.addN(parts)) as tf.Tensor3D;
}

/** Rows of one block, [n, V, size], in the weight's row-major order. */
function rowsOf(b: Block, n: number, V: number): tf.Tensor[] {
  switch (b.kind) {
    case 'linear': {
      const [, , cols, r1] = b.g.shape as [number, number, number, number];
      const r = b.bias === null ? r1 : r1 - 1;
      const w = b.bias === null ? b.g : tf.slice(b.g, 0, [n, V, cols, r]);
      const out = [tf.reshape(tf.transpose(w, [0, 1, 3, 2]), [n, V, r * cols])];
      if (b.bias !== null) out.push(tf.reshape(tf.slice(b.g, [0, 0, 0, r], [n, V, cols, 1]), [n, V, cols]));
      return out;
    }
    case 'rows':
      return [b.rows];
    case 'sepLinear': {
      const [, cols, r1] = b.q.shape as [number, number, number];
      const g = tf.mul(tf.reshape(b.u, [1, V, cols, 1]), tf.reshape(b.q, [n, 1, cols, r1]));
      return rowsOf({ kind: 'linear', kernel: b.kernel, bias: b.bias, g }, n, V);
    }
    case 'outer': {
      const out: tf.Tensor[] = [];
      const din = b.a.shape[1] as number;
      const dout = b.g.shape[2] as number;
      if (b.kernel !== null) {
        const outer = tf.mul(tf.reshape(b.a, [n, 1, din, 1]), tf.reshape(b.g, [n, V, 1, dout]));
        out.push(tf.reshape(outer, [n, V, din * dout]));
      }
      if (b.bias !== null) out.push(b.g);
      return out;
    }
  }
}

/** J(x) over the subset, [n, V, width], columns in `model.trainableWeights` order. */
export function jacobianRowsOf(blocks: Block[], n: number, V: number): tf.Tensor3D {
  const parts = blocks.flatMap((b) => rowsOf(b, n, V));
  return (parts.length === 1 ? (parts[0] as tf.Tensor).clone() : tf.concat(parts, 2)) as tf.Tensor3D;
}
