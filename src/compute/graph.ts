/**
 * Compiles a tfjs layers model into a flat graph of ops the engine can run forward and backward
 * by itself. Every layer the fast path knows becomes a typed op; any other layer becomes a
 * `generic` op whose backward uses tfjs autodiff (exact, slower), and is named in `generic`.
 */
import * as tf from '@tensorflow/tfjs';
import { invariant } from './invariant.js';
import { ScalarEncoder } from './series-layers.js';
import type { ScalarWeights } from './series-layers.js';

/** One trainable weight tensor of the model, in `model.trainableWeights` order. */
export interface Param {
  /** Index in the model's trainable weights; the order of J's columns. */
  index: number;
  /** tfjs weight name, e.g. 'conv1/kernel'. */
  name: string;
  /** Name of the layer that owns it. */
  layer: string;
  shape: number[];
  size: number;
  /** The live variable (read at call time, so later weight loads are seen). */
  variable: tf.LayerVariable;
}

export type Activation = { kind: 'linear' } | { kind: 'elementwise'; name: string; fn: (z: tf.Tensor) => tf.Tensor };

interface Base {
  id: number;
  name: string;
  layer: tf.layers.Layer | null;
  inputs: number[];
  /** Output shape without the batch axis. */
  shape: number[];
}

export type Op =
  | (Base & { kind: 'input' })
  | (Base & { kind: 'identity' })
  | (Base & { kind: 'dense'; kernel: tf.LayerVariable; bias: tf.LayerVariable | null; act: Activation })
  | (Base & {
      kind: 'conv1d';
      kernel: tf.LayerVariable;
      bias: tf.LayerVariable | null;
      act: Activation;
      stride: number;
      /** Zeros added before/after the series by the forward padding. */
      padBefore: number;
      padAfter: number;
    })
  | (Base & { kind: 'pool1d'; mode: 'max' | 'avg'; size: number })
  | (Base & { kind: 'globalPool1d'; mode: 'max' | 'avg' })
  | (Base & { kind: 'flatten' })
  | (Base & { kind: 'layerNorm'; gamma: tf.LayerVariable | null; beta: tf.LayerVariable | null; epsilon: number })
  | (Base & {
      kind: 'batchNorm';
      gamma: tf.LayerVariable | null;
      beta: tf.LayerVariable | null;
      mean: tf.LayerVariable;
      variance: tf.LayerVariable;
      epsilon: number;
    })
  | (Base & { kind: 'activation'; act: Activation })
  | (Base & { kind: 'add' })
  | (Base & { kind: 'concat' })
  | (Base & { kind: 'classToken'; token: tf.LayerVariable })
  | (Base & { kind: 'position' })
  | (Base & { kind: 'attention'; heads: number })
  | (Base & { kind: 'takeToken'; index: number })
  | (Base & { kind: 'channelSeries' })
  | (Base & { kind: 'seriesNorm'; epsilon: number })
  /** Forward only, no signal to the input (Mantis computes these under `torch.no_grad`). */
  | (Base & { kind: 'stopGradient'; fn: 'diff' | 'patchMean' | 'patchStd'; patches: number })
  | (Base & {
      kind: 'scalarEncoder';
      groups: ScalarEncoder['groups'];
      scales: number[];
      epsilon: number;
      lnEpsilon: number;
      /** The weights stacked over scales (read at call time). */
      stacked: () => ScalarWeights;
    })
  | (Base & { kind: 'generic'; reason: string });

export type OpKind = Op['kind'];

/** A compiled model. */
export interface Graph {
  model: tf.LayersModel;
  /** Ops in topological order; `ops[i].id === i`. */
  ops: Op[];
  /** The op whose output is the logits z (pre-softmax). */
  logits: number;
  /** Number of classes V. */
  classes: number;
  /** Input shape without batch: [length, channels]. */
  inputShape: [number, number];
  /** All trainable weights, in `model.trainableWeights` order. */
  params: Param[];
  /** Layers handled by the generic path, with the reason. */
  generic: Array<{ layer: string; reason: string }>;
  /** How the model output relates to the logits: equal, a softmax layer after them, or the softmax activation of the last Dense. */
  tail: 'logits' | 'softmaxLayer' | 'denseSoftmax';
}

type LayerWithActivation = tf.layers.Layer & { activation?: { apply(x: tf.Tensor): tf.Tensor; getClassName?(): string } };

function activationOf(layer: tf.layers.Layer, name: unknown): Activation | string {
  const n = typeof name === 'string' ? name : 'linear';
  if (n === 'linear') return { kind: 'linear' };
  if (n === 'softmax') return 'softmax is not elementwise';
  const act = (layer as LayerWithActivation).activation;
  if (act === undefined) return `activation '${n}' not readable`;
  return { kind: 'elementwise', name: n, fn: (z) => act.apply(z) };
}

function dims(v: unknown): number[] {
  if (Array.isArray(v)) return v as number[];
  if (typeof v === 'number') return [v];
  return [];
}

function weight(layer: tf.layers.Layer, suffix: string): tf.LayerVariable | null {
  return layer.weights.find((w) => w.originalName.endsWith(`/${suffix}`)) ?? null;
}

function shapeOf(t: tf.SymbolicTensor): number[] {
  const s = t.shape.slice(1);
  invariant(s.every((d) => typeof d === 'number'), `layer output ${t.name} has an unknown dimension`);
  return s as number[];
}

/** Classifies one layer; returns a reason string when the fast path does not know it. */
type OpBody = Op extends infer O ? (O extends unknown ? Omit<O, keyof Base> : never) : never;

function classify(layer: tf.layers.Layer, inShapes: number[][]): OpBody | string {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Record<string, unknown>;
  const in0 = inShapes[0] ?? [];
  switch (cls) {
    case 'InputLayer':
      return { kind: 'input' };
    case 'Dropout':
    case 'SpatialDropout1D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      return { kind: 'identity' };
    case 'Dense': {
      const act = activationOf(layer, cfg['activation']);
      if (typeof act === 'string') return act;
      const kernel = weight(layer, 'kernel');
      invariant(kernel !== null, 'Dense without kernel');
      return { kind: 'dense', kernel, bias: weight(layer, 'bias'), act };
    }
    case 'Conv1D': {
      const act = activationOf(layer, cfg['activation']);
      if (typeof act === 'string') return act;
      if (cfg['dataFormat'] !== undefined && cfg['dataFormat'] !== 'channelsLast') return 'channelsFirst Conv1D';
      if (dims(cfg['dilationRate']).some((d) => d !== 1)) return 'dilated Conv1D';
      const kernel = weight(layer, 'kernel');
      invariant(kernel !== null, 'Conv1D without kernel');
      const k = kernel.shape[0] as number;
      const stride = dims(cfg['strides'])[0] ?? 1;
      const tIn = in0[0] as number;
      const padding = cfg['padding'];
      let padBefore = 0;
      let padAfter = 0;
      if (padding === 'same') {
        const tOut = Math.ceil(tIn / stride);
        const total = Math.max((tOut - 1) * stride + k - tIn, 0);
        padBefore = Math.floor(total / 2);
        padAfter = total - padBefore;
      } else if (padding !== 'valid') {
        // tfjs-layers itself cannot run 'causal' (NotImplementedError in conv1dWithBias).
        return `Conv1D padding '${String(padding)}'`;
      }
      return { kind: 'conv1d', kernel, bias: weight(layer, 'bias'), act, stride, padBefore, padAfter };
    }
    case 'MaxPooling1D':
    case 'AveragePooling1D': {
      const size = dims(cfg['poolSize'])[0] ?? 2;
      const stride = dims(cfg['strides'])[0] ?? size;
      if (stride !== size) return 'overlapping pooling';
      if (cfg['padding'] !== 'valid') return `pooling padding '${String(cfg['padding'])}'`;
      return { kind: 'pool1d', mode: cls === 'MaxPooling1D' ? 'max' : 'avg', size };
    }
    case 'GlobalAveragePooling1D':
    case 'GlobalMaxPooling1D':
      if (cfg['dataFormat'] !== undefined && cfg['dataFormat'] !== 'channelsLast') return 'channelsFirst pooling';
      return { kind: 'globalPool1d', mode: cls === 'GlobalMaxPooling1D' ? 'max' : 'avg' };
    case 'Flatten':
      return { kind: 'flatten' };
    case 'LayerNormalization': {
      const axis = dims(cfg['axis']);
      const rank = in0.length + 1;
      if (!(axis.length === 1 && (axis[0] === -1 || axis[0] === rank - 1))) return 'LayerNormalization over other axes';
      return {
        kind: 'layerNorm',
        gamma: weight(layer, 'gamma'),
        beta: weight(layer, 'beta'),
        epsilon: typeof cfg['epsilon'] === 'number' ? cfg['epsilon'] : 1e-3,
      };
    }
    case 'BatchNormalization': {
      // At inference a per-channel affine map with the moving statistics.
      const axis = cfg['axis'];
      const rank = in0.length + 1;
      if (!(axis === -1 || axis === rank - 1)) return 'BatchNormalization over another axis';
      const mean = weight(layer, 'moving_mean');
      const variance = weight(layer, 'moving_variance');
      invariant(mean !== null && variance !== null, 'BatchNormalization without moving statistics');
      return {
        kind: 'batchNorm',
        gamma: weight(layer, 'gamma'),
        beta: weight(layer, 'beta'),
        mean,
        variance,
        epsilon: typeof cfg['epsilon'] === 'number' ? cfg['epsilon'] : 1e-3,
      };
    }
    case 'Activation': {
      const act = activationOf(layer, cfg['activation']);
      if (typeof act === 'string') return act;
      return act.kind === 'linear' ? { kind: 'identity' } : { kind: 'activation', act };
    }
    case 'ReLU':
      if (cfg['maxValue'] != null) return 'ReLU with maxValue';
      return { kind: 'activation', act: { kind: 'elementwise', name: 'relu', fn: (z: tf.Tensor) => tf.relu(z) } };
    case 'Add':
      return { kind: 'add' };
    case 'Concatenate': {
      const axis = cfg['axis'];
      if (!(axis === -1 || axis === in0.length)) return 'Concatenate on a non-channel axis';
      return { kind: 'concat' };
    }
    case 'ClassToken': {
      const token = weight(layer, 'token');
      invariant(token !== null, 'ClassToken without token');
      return { kind: 'classToken', token };
    }
    case 'SinusoidalPosition':
      return { kind: 'position' };
    case 'SelfAttention':
      return { kind: 'attention', heads: cfg['heads'] as number };
    case 'TakeToken':
      return { kind: 'takeToken', index: (cfg['index'] as number | undefined) ?? 0 };
    case 'ChannelSeries':
      return { kind: 'channelSeries' };
    case 'SeriesNorm':
      return { kind: 'seriesNorm', epsilon: cfg['epsilon'] as number };
    case 'SeriesDiff':
      return { kind: 'stopGradient', fn: 'diff', patches: 0 };
    case 'PatchStats':
      return { kind: 'stopGradient', fn: cfg['stat'] === 'std' ? 'patchStd' : 'patchMean', patches: cfg['patches'] as number };
    case 'PatchMean': {
      const l = in0[in0.length - 2] as number;
      const patches = cfg['patches'] as number;
      if (l % patches !== 0) return `PatchMean of ${l} steps into ${patches} patches`;
      return { kind: 'pool1d', mode: 'avg', size: l / patches };
    }
    case 'SeriesConv': {
      const kernel = weight(layer, 'kernel');
      invariant(kernel !== null, 'SeriesConv without kernel');
      const pad = cfg['padding'] as number;
      return { kind: 'conv1d', kernel, bias: weight(layer, 'bias'), act: { kind: 'linear' }, stride: 1, padBefore: pad, padAfter: pad };
    }
    case 'ScalarEncoder': {
      invariant(layer instanceof ScalarEncoder, 'ScalarEncoder of another module');
      return {
        kind: 'scalarEncoder',
        groups: layer.groups,
        scales: layer.scales,
        epsilon: layer.epsilon,
        lnEpsilon: layer.lnEpsilon,
        stacked: () => layer.stacked(),
      };
    }
    default:
      return `layer class ${cls}`;
  }
}

/**
 * Compiles a single-input, single-output classifier. The output must be the logits [n, V] or
 * a softmax of them (a final softmax activation is dropped: the engine works on logits).
 */
export function compile(model: tf.LayersModel): Graph {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error('the engine needs a model with one input and one output');
  }
  const inShape = model.inputs[0]?.shape ?? [];
  if (inShape.length !== 3 || typeof inShape[1] !== 'number' || typeof inShape[2] !== 'number') {
    throw new Error(`model input must be [n, length, channels] with known sizes; got [${inShape.join(', ')}]`);
  }
  const ops: Op[] = [];
  const byTensor = new Map<number, number>();
  const generic: Array<{ layer: string; reason: string }> = [];

  const visit = (t: tf.SymbolicTensor): number => {
    const known = byTensor.get(t.id);
    if (known !== undefined) return known;
    const layer = t.sourceLayer as tf.layers.Layer;
    const node = (layer as unknown as { inboundNodes: Array<{ inputTensors: tf.SymbolicTensor[] }> }).inboundNodes[t.nodeIndex];
    invariant(node !== undefined, `no inbound node for ${t.name}`);
    if (t.tensorIndex !== 0) throw new Error(`layer ${layer.name} has several outputs; the engine does not support that`);
    const inputs = layer.getClassName() === 'InputLayer' ? [] : node.inputTensors.map(visit);
    const inShapes = inputs.map((i) => (ops[i] as Op).shape);
    let kind = classify(layer, inShapes);
    if (layer instanceof tf.LayersModel) kind = 'nested model';
    if (typeof kind === 'string') generic.push({ layer: layer.name, reason: kind });
    const base: Base = { id: ops.length, name: layer.name, layer, inputs, shape: shapeOf(t) };
    const op = (typeof kind === 'string' ? { ...base, kind: 'generic', reason: kind } : { ...base, ...kind }) as Op;
    ops.push(op);
    byTensor.set(t.id, op.id);
    return op.id;
  };

  const out = model.outputs[0] as tf.SymbolicTensor;
  let logits = visit(out);
  let last = ops[logits] as Op;
  let tail: Graph['tail'] = 'logits';
  // A final softmax (as an activation of the last Dense, or its own layer) is not part of z.
  if (last.kind === 'generic' && last.layer !== null) {
    const cls = last.layer.getClassName();
    const cfg = last.layer.getConfig() as Record<string, unknown>;
    if (cls === 'Dense' && cfg['activation'] === 'softmax') {
      const kernel = weight(last.layer, 'kernel');
      invariant(kernel !== null, 'Dense without kernel');
      ops[logits] = { ...last, kind: 'dense', kernel, bias: weight(last.layer, 'bias'), act: { kind: 'linear' } } as Op;
      generic.pop();
      tail = 'denseSoftmax';
    } else if ((cls === 'Activation' && cfg['activation'] === 'softmax') || cls === 'Softmax') {
      generic.pop();
      logits = last.inputs[0] as number;
      ops.pop();
      tail = 'softmaxLayer';
    }
    last = ops[logits] as Op;
  }
  if (last.shape.length !== 1) throw new Error(`the logits must be [n, V]; got [n, ${last.shape.join(', ')}]`);
  const owner = new Map<number, string>();
  for (const op of ops) for (const w of op.layer?.trainableWeights ?? []) owner.set(w.id, op.name);
  const params: Param[] = model.trainableWeights.map((w, index) => ({
    index,
    name: w.originalName,
    layer: owner.get(w.id) ?? (w.originalName.split('/')[0] as string),
    shape: w.shape as number[],
    size: w.shape.reduce((a: number, b) => a * (b as number), 1),
    variable: w,
  }));
  return {
    model,
    ops,
    logits,
    classes: last.shape[0] as number,
    inputShape: [inShape[1], inShape[2]],
    params,
    generic,
    tail,
  };
}
