/**
 * One chunk of samples through the fast path: a forward pass that keeps what each op's backward
 * needs, then one backward pass that carries all V class cotangents at once (a class axis in
 * every signal), rebuilding each subset layer's per-sample weight gradients on the way.
 *
 * Cost per chunk ≈ forward + V × (backward of the signal + weight-gradient products); there is no
 * loop over samples or classes except the per-sample 2D products on wasm (see `bmm`).
 */
import * as tf from '@tensorflow/tfjs';
import type { Graph } from './graph.js';
import { invariant } from './invariant.js';
import { backwardOp, forwardOp } from './ops/index.js';
import { addSignals, disposeSignal } from './ops/signal.js';
import type { Block, Ctx, Saved, Signal } from './ops/types.js';
import type { Plan } from './plan.js';

export interface Chunk {
  /** Logits z, [n, V]. */
  logits: tf.Tensor2D;
  /** J blocks of the subset params, in column order. */
  blocks: Block[];
}

function disposeSaved(s: Saved | undefined, keep: tf.Tensor | null): void {
  if (s === undefined) return;
  const { extra, ...tensors } = s;
  for (const t of [...Object.values(tensors), ...Object.values(extra ?? {})]) if (t !== undefined && t !== keep) t.dispose();
}

/**
 * Where a forward pass starts and stops other than at the input and the logits (the frozen-trunk
 * cache, trunk.ts): ops given in `preset` take that output as theirs, ops `skip` says are not run,
 * and the pass stops after op `stopAt`.
 */
export interface ForwardFrom {
  preset?: ReadonlyMap<number, tf.Tensor>;
  skip?: (id: number) => boolean;
  stopAt?: number;
}

/**
 * The forward pass up to the logits, keeping only what `keep(id)` says the backward needs: any
 * other op's state is released as soon as its last consumer has run (so a head-only K holds one
 * layer's activations at a time, not the whole encoder's).
 */
export function forward(graph: Graph, x: tf.Tensor3D | null, keep: (id: number) => boolean, from: ForwardFrom = {}): Array<Saved | undefined> {
  const { ops, logits } = graph;
  const stopAt = from.stopAt ?? logits;
  const lastUse = ops.map((o) => o.id);
  for (const op of ops) for (const i of op.inputs) lastUse[i] = Math.max(lastUse[i] as number, op.id);
  const saved: Array<Saved | undefined> = [];
  for (const op of ops) {
    const given = from.preset?.get(op.id);
    if (given !== undefined) {
      saved[op.id] = { out: given };
    } else if (from.skip?.(op.id) !== true) {
      invariant(op.kind !== 'input' || x !== null, 'a forward pass without its input');
      // Each op in its own scope: only what it returns (its output and what its backward reads) lives on.
      saved[op.id] = op.kind === 'input' ? { out: x as tf.Tensor3D } : (tf.tidy(() => forwardOp(op, op.inputs.map((i) => (saved[i] as Saved).out)) as unknown as tf.TensorContainer) as unknown as Saved);
      for (const i of op.inputs) {
        if (lastUse[i] === op.id && i !== logits && !keep(i)) {
          disposeSaved(saved[i], x);
          saved[i] = undefined;
        }
      }
    }
    if (op.id === stopAt) break;
  }
  return saved;
}

/** The forward pass only: logits [n, V] for x [n, length, channels]. */
export function forwardLogits(graph: Graph, x: tf.Tensor3D): tf.Tensor2D {
  const saved = forward(graph, x, () => false);
  const z = (saved[graph.logits] as Saved).out.clone();
  for (const s of saved) disposeSaved(s, x);
  return z as tf.Tensor2D;
}

/**
 * Runs one chunk. Must be called inside `tf.tidy` (every intermediate it does not dispose early
 * is released there); the returned tensors are the caller's.
 */
export function runChunk(plan: Plan, x: tf.Tensor3D | null, loopMatMul: boolean, from?: ForwardFrom): Chunk {
  const { ops, logits, classes: V } = plan.graph;
  const first = x ?? from?.preset?.values().next().value;
  invariant(first !== undefined, 'a chunk without samples');
  const n = first.shape[0] as number;
  // The backward reads an op's saved state when it sends a signal through it, and its output
  // when a consumer does.
  const needed = ops.map((o) => plan.needSignal[o.id] === true);
  for (const op of ops) if (plan.needSignal[op.id] === true) for (const i of op.inputs) needed[i] = true;
  const saved = forward(plan.graph, x, (id) => needed[id] === true, from);
  const z = (saved[logits] as Saved).out as tf.Tensor2D;

  const ctx: Ctx = {
    n,
    V,
    loopMatMul,
    paramOf: (v) => (v === null ? null : plan.paramByVariable.get(v.id) ?? null),
  };
  const signal = new Map<number, Signal>();
  // ∂z/∂z = I for every sample: separable with m = 1 and u = I.
  signal.set(logits, { kind: 'separable', m: tf.ones([n, 1]), u: tf.eye(V) });
  const blocks: Block[] = [];
  for (let id = logits; id >= 0; id--) {
    const dy = signal.get(id);
    if (dy === undefined) continue;
    signal.delete(id);
    const op = ops[id];
    invariant(op !== undefined, 'op out of range');
    const xs = op.inputs.map((i) => (saved[i] as Saved).out);
    const need = op.inputs.map((i) => plan.needSignal[i] === true);
    const res = tf.tidy(() => backwardOp(op, xs, saved[id] as Saved, dy, need, plan.gradOp[id] === true, ctx) as unknown as tf.TensorContainer) as unknown as ReturnType<typeof backwardOp>;
    blocks.push(...res.blocks);
    res.dxs.forEach((dx, i) => {
      if (dx === null) return;
      const to = op.inputs[i] as number;
      const prev = signal.get(to);
      if (prev === undefined) {
        signal.set(to, dx);
      } else {
        signal.set(to, addSignals(prev, dx));
        disposeSignal(prev);
        disposeSignal(dx);
      }
    });
    disposeSignal(dy);
    if (id !== logits) disposeSaved(saved[id], x);
    saved[id] = undefined;
  }
  invariant(signal.size === 0, 'signal left over after the backward pass');
  blocks.sort((a, b) => firstParam(a) - firstParam(b));
  return { logits: z, blocks };
}

function firstParam(b: Block): number {
  if (b.kind === 'outer') return (b.kernel ?? b.bias) as number;
  if (b.kind === 'linear' || b.kind === 'sepLinear') return b.kernel;
  return b.param;
}
