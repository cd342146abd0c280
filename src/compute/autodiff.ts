/**
 * The generic path for a whole model: J by tfjs autodiff, one `variableGrads` per (sample, class)
 * through the model itself. Exact for any layers tfjs can differentiate, and slow (n·V backward
 * passes); the independent reference the fast path is tested against.
 */
import * as tf from '@tensorflow/tfjs';
import type { Chunk } from './backprop.js';
import type { Graph } from './graph.js';
import { invariant } from './invariant.js';
import type { Block } from './ops/types.js';
import type { Plan } from './plan.js';

const logitsFns = new WeakMap<Graph, (x: tf.Tensor) => tf.Tensor2D>();

/** z = h_θ(x) through the tfjs model (its final softmax, if any, left out). */
export function logitsFunction(graph: Graph): (x: tf.Tensor) => tf.Tensor2D {
  const known = logitsFns.get(graph);
  if (known !== undefined) return known;
  const model = graph.model;
  let fn: (x: tf.Tensor) => tf.Tensor2D;
  if (graph.tail === 'logits') {
    fn = (x) => model.apply(x, { training: false }) as tf.Tensor2D;
  } else {
    const out = model.outputs[0] as tf.SymbolicTensor;
    const before = tf.model({ inputs: model.inputs, outputs: out.sourceLayer.input as tf.SymbolicTensor });
    if (graph.tail === 'softmaxLayer') {
      fn = (x) => before.apply(x, { training: false }) as tf.Tensor2D;
    } else {
      const op = graph.ops[graph.logits];
      invariant(op !== undefined && op.kind === 'dense', 'softmax head must be a Dense op');
      fn = (x) =>
        tf.tidy(() => {
          const h = before.apply(x, { training: false }) as tf.Tensor2D;
          const z = tf.matMul(h, op.kernel.read() as tf.Tensor2D);
          return (op.bias === null ? z : tf.add(z, op.bias.read())) as tf.Tensor2D;
        });
    }
  }
  logitsFns.set(graph, fn);
  return fn;
}

/** One chunk through tfjs autodiff; same result type as the fast path. Call inside `tf.tidy`. */
export function autodiffChunk(plan: Plan, x: tf.Tensor3D): Chunk {
  const f = logitsFunction(plan.graph);
  const n = x.shape[0];
  const V = plan.graph.classes;
  const logits = f(x);
  const vars = plan.params.map((p) => p.variable.read() as tf.Variable);
  const rows: tf.Tensor[][] = plan.params.map(() => []);
  for (let s = 0; s < n; s++) {
    const xs = tf.slice(x, s, 1);
    for (let c = 0; c < V; c++) {
      const { value, grads } = tf.variableGrads(() => tf.squeeze(tf.slice(f(xs), [0, c], [1, 1])) as tf.Scalar, vars);
      vars.forEach((v, i) => (rows[i] as tf.Tensor[]).push(tf.reshape(grads[v.name] as tf.Tensor, [-1])));
      tf.dispose([value, ...Object.values(grads)]);
    }
    xs.dispose();
  }
  const blocks: Block[] = plan.params.map((p, i) => ({
    kind: 'rows',
    param: p.index,
    rows: tf.reshape(tf.stack(rows[i] as tf.Tensor[]), [n, V, p.size]),
  }));
  return { logits, blocks };
}
