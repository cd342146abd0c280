/**
 * Where a model's forward pass splits for a parameter subset: the frozen trunk (every op whose
 * output depends on no weight of the subset) and the frontier (the trunk ops whose outputs the
 * subset side reads). Activations at the frontier are a function of the input and the trunk's
 * weights only, so they can be computed once per (sample, trunk weights) and the rest of the pass
 * (logits, J over the subset) run from them: trunk.ts is the entry point.
 */
import * as tf from '@tensorflow/tfjs';
import type { ForwardFrom } from './backprop.js';
import type { Plan } from './plan.js';

export interface TrunkSplit {
  /** Per op: its output depends on no weight of the subset. */
  trunk: boolean[];
  /** Trunk ops whose outputs an op of the subset side reads, in op order. */
  frontier: number[];
  /** Floats per sample of the frontier outputs, concatenated in frontier order (sample-major). */
  width: number;
  /**
   * Whether starting from the frontier saves anything: false when the frontier is the input alone
   * (a subset layer reads the series itself) or when the logits do not depend on the subset.
   */
  saves: boolean;
}

/**
 * The split of `plan`'s graph. Dependence is followed through every op, stopGradient ones included
 * (`SeriesDiff` passes no gradient but its value depends on an adapter before it), so the trunk is
 * exactly what the subset's weights cannot change.
 */
export function trunkSplit(plan: Plan): TrunkSplit {
  const { ops, logits } = plan.graph;
  const depends: boolean[] = [];
  for (const op of ops) depends[op.id] = plan.gradOp[op.id] === true || op.inputs.some((i) => depends[i] === true);
  const trunk = ops.map((op) => depends[op.id] !== true);
  const reads = new Set<number>();
  for (const op of ops) {
    if (op.id > logits || trunk[op.id]) continue;
    for (const i of op.inputs) if (trunk[i]) reads.add(i);
  }
  const frontier = [...reads].sort((a, b) => a - b);
  const width = frontier.reduce((a, id) => a + sizeOf(plan, id), 0);
  const onlyInput = frontier.every((id) => ops[id]?.kind === 'input');
  return { trunk, frontier, width, saves: trunk[logits] !== true && frontier.length > 0 && !onlyInput };
}

function sizeOf(plan: Plan, id: number): number {
  return (plan.graph.ops[id]?.shape ?? []).reduce((a, b) => a * b, 1);
}

/**
 * The frontier of samples [start, start + n) of `features` ([N, width], sample-major) as tensors,
 * and how the forward pass starts from them (`runChunk`'s `from`). Call inside tf.tidy.
 */
export function forwardFromFeatures(plan: Plan, split: TrunkSplit, features: Float32Array, start: number, n: number): ForwardFrom {
  const preset = new Map<number, tf.Tensor>();
  let offset = 0;
  for (const id of split.frontier) {
    const size = sizeOf(plan, id);
    const part = new Float32Array(n * size);
    for (let s = 0; s < n; s++) {
      const from = (start + s) * split.width + offset;
      part.set(features.subarray(from, from + size), s * size);
    }
    preset.set(id, tf.tensor(part, [n, ...(plan.graph.ops[id]?.shape ?? [])]));
    offset += size;
  }
  return { preset, skip: (id) => split.trunk[id] === true && !preset.has(id) };
}

/** How the forward pass runs the trunk alone: trunk ops only, up to the last frontier op. */
export function trunkOnly(split: TrunkSplit): ForwardFrom {
  return { skip: (id) => split.trunk[id] !== true, stopAt: split.frontier[split.frontier.length - 1] as number };
}

/** Writes the frontier outputs of a chunk (tensors in frontier order) into `features` at sample `start`. */
export function writeFeatures(plan: Plan, split: TrunkSplit, outs: Float32Array[], features: Float32Array, start: number, n: number): void {
  let offset = 0;
  split.frontier.forEach((id, k) => {
    const size = sizeOf(plan, id);
    const part = outs[k] as Float32Array;
    for (let s = 0; s < n; s++) features.set(part.subarray(s * size, (s + 1) * size), (start + s) * split.width + offset);
    offset += size;
  });
}
