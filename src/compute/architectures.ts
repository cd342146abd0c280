/**
 * The built-in reference architectures, as tfjs layers models with named layers and seeded
 * initialisers (the same config and seed give the same weights on every backend).
 */
import * as tf from '@tensorflow/tfjs';
import { ClassToken, SelfAttention, SinusoidalPosition, TakeToken } from './layers.js';
import { cnn1dProblems, throwFirst, transformerProblems, type ConfigProblem } from './architecture-config.js';
import { MANTIS_DEFAULTS, mantis, mantisProblems } from './mantis.js';
import type { MantisConfig } from './mantis.js';

/** A 1D-CNN time-series classifier: [Conv1D(same, relu) → MaxPool]… → Conv1D → GAP → Dense. */
export interface Cnn1dConfig {
  /** Series length (time steps). */
  length: number;
  /** Channels per time step. */
  channels: number;
  /** Number of classes V (the head's width; logits are linear). */
  classes: number;
  /** Filters per Conv1D layer. */
  filters: number[];
  /** Kernel size per Conv1D layer (same length as `filters`). */
  kernelSizes: number[];
  /** Max-pool size after every Conv1D but the last (0: none). */
  pool: number;
  /** Dropout rate before the head (identity at inference). */
  dropout: number;
  /** Seed of the weight initialisers. */
  seed: number;
}

/** 23 594 parameters for input 512×1 and 10 classes. */
export const CNN1D_DEFAULTS: Cnn1dConfig = {
  length: 512,
  channels: 1,
  classes: 10,
  filters: [32, 64, 64],
  kernelSizes: [8, 5, 3],
  pool: 2,
  dropout: 0.1,
  seed: 1,
};

/**
 * Builds the 1D-CNN. Layer names: conv1…convN, pool1…, gap, dropout, head.
 * @returns a functional model, input [n, length, channels] → logits [n, classes].
 */
export function cnn1d(config: Partial<Cnn1dConfig> = {}): tf.LayersModel {
  const c = { ...CNN1D_DEFAULTS, ...config };
  throwFirst(cnn1dProblems(c));
  let seed = c.seed * 1000;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const input = tf.input({ shape: [c.length, c.channels], name: 'input' });
  let x = input;
  c.filters.forEach((filters, i) => {
    x = tf.layers
      .conv1d({
        filters,
        kernelSize: c.kernelSizes[i] as number,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(),
        biasInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: seed++ }),
        name: `conv${i + 1}`,
      })
      .apply(x) as tf.SymbolicTensor;
    if (c.pool > 1 && i < c.filters.length - 1) {
      x = tf.layers.maxPooling1d({ poolSize: c.pool, name: `pool${i + 1}` }).apply(x) as tf.SymbolicTensor;
    }
  });
  x = tf.layers.globalAveragePooling1d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  if (c.dropout > 0) x = tf.layers.dropout({ rate: c.dropout, name: 'dropout' }).apply(x) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({
      units: c.classes,
      kernelInitializer: init(),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: seed++ }),
      name: 'head',
    })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits, name: 'cnn1d' });
}

/**
 * A small Mantis-style transformer classifier: patch tokens from a strided Conv1D, LayerNorm, a
 * learned CLS token, sinusoidal positions, pre-norm blocks (multi-head self-attention, GELU MLP),
 * then the CLS token through LayerNorm and a linear head.
 */
export interface TransformerConfig {
  length: number;
  channels: number;
  classes: number;
  /** Time steps per patch token (the Conv1D kernel and stride). */
  patch: number;
  /** Token width d. */
  dim: number;
  /** Number of pre-norm blocks. */
  depth: number;
  /** Attention heads (dim must be divisible by heads). */
  heads: number;
  /** Hidden width of each block's MLP. */
  mlpDim: number;
  /** Dropout rate after attention and MLP (identity at inference). */
  dropout: number;
  seed: number;
}

/** 69 322 parameters for input 512×1 and 10 classes. */
export const TRANSFORMER_DEFAULTS: TransformerConfig = {
  length: 512,
  channels: 1,
  classes: 10,
  patch: 16,
  dim: 64,
  depth: 2,
  heads: 4,
  mlpDim: 128,
  dropout: 0.1,
  seed: 1,
};

/**
 * Builds the transformer. Layer names: patch, patch_norm, cls, pos, block{i}_{ln1,qkv,attn,proj,
 * drop1,add1,ln2,mlp1,mlp2,drop2,add2}, cls_out, head_norm, head.
 * @returns a functional model, input [n, length, channels] → logits [n, classes].
 */
export function transformer(config: Partial<TransformerConfig> = {}): tf.LayersModel {
  const c = { ...TRANSFORMER_DEFAULTS, ...config };
  throwFirst(transformerProblems(c));
  let seed = c.seed * 1000;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const bias = () => tf.initializers.randomUniform({ minval: -0.02, maxval: 0.02, seed: seed++ });
  const norm = (name: string) =>
    tf.layers.layerNormalization({
      name,
      gammaInitializer: tf.initializers.randomUniform({ minval: 0.9, maxval: 1.1, seed: seed++ }),
      betaInitializer: bias(),
    });
  const dense = (units: number, name: string, activation?: 'gelu') =>
    tf.layers.dense({ units, name, activation, kernelInitializer: init(), biasInitializer: bias() });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) =>
    layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [c.length, c.channels], name: 'input' });
  let x = apply(
    tf.layers.conv1d({
      filters: c.dim,
      kernelSize: c.patch,
      strides: c.patch,
      padding: 'valid',
      kernelInitializer: init(),
      biasInitializer: bias(),
      name: 'patch',
    }),
    input,
  );
  x = apply(norm('patch_norm'), x);
  x = apply(new ClassToken({ name: 'cls', seed: seed++ }), x);
  x = apply(new SinusoidalPosition({ name: 'pos' }), x);
  for (let b = 0; b < c.depth; b++) {
    const p = `block${b}`;
    let y = apply(norm(`${p}_ln1`), x);
    y = apply(dense(3 * c.dim, `${p}_qkv`), y);
    y = apply(new SelfAttention({ heads: c.heads, name: `${p}_attn` }), y);
    y = apply(dense(c.dim, `${p}_proj`), y);
    if (c.dropout > 0) y = apply(tf.layers.dropout({ rate: c.dropout, name: `${p}_drop1` }), y);
    x = apply(tf.layers.add({ name: `${p}_add1` }), [x, y]);
    y = apply(norm(`${p}_ln2`), x);
    y = apply(dense(c.mlpDim, `${p}_mlp1`, 'gelu'), y);
    y = apply(dense(c.dim, `${p}_mlp2`), y);
    if (c.dropout > 0) y = apply(tf.layers.dropout({ rate: c.dropout, name: `${p}_drop2` }), y);
    x = apply(tf.layers.add({ name: `${p}_add2` }), [x, y]);
  }
  x = apply(new TakeToken({ index: 0, name: 'cls_out' }), x);
  x = apply(norm('head_norm'), x);
  const logits = apply(dense(c.classes, 'head'), x);
  return tf.model({ inputs: input, outputs: logits, name: 'transformer' });
}

/** Names of the built-in architectures. */
export const ARCHITECTURES = ['cnn1d', 'transformer', 'mantis'] as const;
export type ArchitectureName = (typeof ARCHITECTURES)[number];

/** Builds a built-in architecture by name; unknown config keys are ignored. */
export function buildArchitecture(name: ArchitectureName, config: Record<string, unknown> = {}): tf.LayersModel {
  switch (name) {
    case 'cnn1d':
      return cnn1d(config as Partial<Cnn1dConfig>);
    case 'transformer':
      return transformer(config as Partial<TransformerConfig>);
    case 'mantis':
      return mantis(config as Partial<MantisConfig>);
    default:
      throw new Error(`unknown architecture '${String(name)}'; known: ${ARCHITECTURES.join(', ')}`);
  }
}

/** The series shape a built-in model is built for: its input length and channels, and its classes. */
export interface ArchitectureShape {
  length: number;
  channels: number;
  classes: number;
}

/**
 * Everything that keeps `name` with `config` from being built for inputs of `shape` (the engine
 * would throw it later, or build a model that ignores its input): an unknown architecture, config
 * options it does not have (a misspelt option would otherwise be ignored silently), and each
 * architecture's own rules. The shape wins over `length`, `channels` and `classes` in the config,
 * as when the model is built. Empty when the model can be built. Pure: no tensor is made.
 */
export function architectureConfigProblems(name: string, config: Record<string, unknown>, shape: ArchitectureShape): ConfigProblem[] {
  if (!ARCHITECTURES.includes(name as ArchitectureName)) {
    return [{ key: 'architecture', message: `Tangent has no built-in architecture '${name}' (known: ${ARCHITECTURES.join(', ')})` }];
  }
  const defaults = ARCHITECTURE_DEFAULTS[name as ArchitectureName] as unknown as Record<string, unknown>;
  const unknown = Object.keys(config).filter((k) => !(k in defaults));
  if (unknown.length > 0) {
    const known = Object.keys(defaults).filter((k) => !(k in shape));
    return unknown.map((key) => ({ key, message: `${name}: unknown config option '${key}' (known: ${known.join(', ')})` }));
  }
  const full = { ...defaults, ...config, ...shape };
  switch (name as ArchitectureName) {
    case 'cnn1d':
      return cnn1dProblems(full as unknown as Cnn1dConfig);
    case 'transformer':
      return transformerProblems(full as unknown as TransformerConfig);
    case 'mantis':
      return mantisProblems(full as unknown as MantisConfig);
  }
}

/** Each built-in architecture's defaults: its options, by name. */
const ARCHITECTURE_DEFAULTS: Record<ArchitectureName, object> = { cnn1d: CNN1D_DEFAULTS, transformer: TRANSFORMER_DEFAULTS, mantis: MANTIS_DEFAULTS };
