/**
 * Parameter subsets and the backward plan: which ops need a signal and which produce J blocks.
 * K over a subset is the sum over its layers of their per-sample gradient products, so the
 * backward stops as soon as every subset layer has been reached (the head alone costs nothing
 * beyond the forward pass).
 */
import type { Graph, Param } from './graph.js';
import { MANTIS_SUBSETS } from './mantis.js';

/**
 * 'all' trainable weights, the 'head', 'adapter_head', or layer names. The 'head' is the layer
 * producing the logits, except where the model names its own subsets: a Mantis model (tfjs
 * model name 'mantis') names its fine-tuning modes, 'head' (head_norm and head) and
 * 'adapter_head' (the channel adapter, when configured, and the head).
 */
export type Subset = 'all' | 'head' | 'adapter_head' | readonly string[];

/** The subsets a model names, as layer names with trainable weights (see `Subset`). */
export function namedSubsets(graph: Graph): Record<string, string[]> {
  if (graph.model.name !== 'mantis') return {};
  const weighted = new Set(graph.params.map((p) => p.layer));
  const out: Record<string, string[]> = {};
  for (const [name, layers] of Object.entries(MANTIS_SUBSETS)) out[name] = layers.filter((l) => weighted.has(l));
  return out;
}

/** A subset a model can be asked for by name: its layers (graph order) and number of parameters. */
export interface SubsetInfo {
  name: string;
  layers: string[];
  parameters: number;
}

/**
 * The subsets a model answers to by name: 'all', 'head' (when the layer producing the logits has
 * weights) and the ones it names itself (`namedSubsets`), each resolved as `makePlan` resolves it.
 */
export function subsetsOf(graph: Graph): SubsetInfo[] {
  const out: SubsetInfo[] = [];
  for (const name of new Set(['all', 'head', ...Object.keys(namedSubsets(graph))])) {
    let layers: string[];
    try {
      layers = resolveSubset(graph, name as Subset);
    } catch {
      continue; // a name this model does not answer to (e.g. 'head' over a weightless logits layer)
    }
    const inSubset = new Set(layers);
    out.push({ name, layers, parameters: graph.params.filter((p) => inSubset.has(p.layer)).reduce((a, p) => a + p.size, 0) });
  }
  return out;
}

export interface Plan {
  graph: Graph;
  /** Layer names in the subset, in graph order. */
  layers: string[];
  /** Params in the subset, in `model.trainableWeights` order (J's column order). */
  params: Param[];
  /** Number of columns of J over the subset. */
  width: number;
  /** Column offset of each subset param, by param index. */
  offset: Map<number, number>;
  /** Per op: its weights are in the subset. */
  gradOp: boolean[];
  /** Per op: the backward needs the signal at its output. */
  needSignal: boolean[];
  /** Subset param index by LayerVariable id. */
  paramByVariable: Map<number, number>;
  /** Layers on the backward path that the fast path does not know (exact, slower). */
  generic: string[];
}

/** Resolves a subset to layer names, with errors that name what exists. */
export function resolveSubset(graph: Graph, subset: Subset): string[] {
  const withWeights = new Set(graph.params.map((p) => p.layer));
  if (subset === 'all') return graph.ops.map((o) => o.name).filter((n) => withWeights.has(n));
  if (typeof subset === 'string') {
    const named = namedSubsets(graph)[subset];
    if (named !== undefined && named.length > 0) return graph.ops.map((o) => o.name).filter((n) => named.includes(n));
  }
  if (subset === 'adapter_head') throw new Error("subset 'adapter_head': only a Mantis model names it; use 'all', 'head' or layer names");
  if (subset === 'head') {
    const head = graph.ops[graph.logits];
    if (head === undefined || !withWeights.has(head.name)) {
      throw new Error("subset 'head': the layer that produces the logits has no trainable weights");
    }
    return [head.name];
  }
  if (!Array.isArray(subset) || subset.length === 0) throw new Error("subset must be 'all', 'head', 'adapter_head' or a non-empty list of layer names");
  for (const name of subset) {
    if (!withWeights.has(name)) {
      throw new Error(`subset: '${name}' is not a layer with trainable weights; known: ${[...withWeights].join(', ')}`);
    }
  }
  return graph.ops.map((o) => o.name).filter((n) => subset.includes(n));
}

export function makePlan(graph: Graph, subset: Subset): Plan {
  const layers = resolveSubset(graph, subset);
  const inSubset = new Set(layers);
  const params = graph.params.filter((p) => inSubset.has(p.layer));
  const offset = new Map<number, number>();
  let width = 0;
  for (const p of params) {
    offset.set(p.index, width);
    width += p.size;
  }
  const paramByVariable = new Map(params.map((p) => [p.variable.id, p.index]));
  const gradOp = graph.ops.map((op) => inSubset.has(op.name));
  const needSignal: boolean[] = [];
  // A stopGradient op passes no signal on, so nothing before it needs one through it.
  for (const op of graph.ops) {
    needSignal[op.id] = gradOp[op.id] === true || (op.kind !== 'stopGradient' && op.inputs.some((i) => needSignal[i] === true));
  }
  const generic = graph.ops.filter((op) => op.kind === 'generic' && needSignal[op.id]).map((op) => op.name);
  return { graph, layers, params, width, offset, gradOp, needSignal, paramByVariable, generic };
}
