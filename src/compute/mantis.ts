/**
 * Mantis (Feofanov et al., 2025, "Mantis: Lightweight Calibrated Foundation Model for
 * User-Friendly Time Series Classification", arXiv 2502.15637; reference code
 * github.com/vfeofanov/mantis, `MantisV1`/`Mantis8M` and `MantisTrainer.fit`) as a tfjs layers
 * model: the encoder and the fine-tuning head, the same math as the PyTorch original at
 * inference (dropout off, BatchNorm on its running statistics).
 */
import * as tf from '@tensorflow/tfjs';
import { ClassToken, SelfAttention, SinusoidalPosition, TakeToken } from './layers.js';
import { divisorList, dropoutProblem, intProblem, seedProblem, throwFirst, type ConfigProblem } from './architecture-config.js';
import { ChannelSeries, PatchMean, PatchStats, ScalarEncoder, SeriesConv, SeriesDiff, SeriesNorm } from './series-layers.js';

/** Mantis's configuration; the defaults are Mantis-8M (input 512, one channel). */
export interface MantisConfig {
  /** Series length L (`seq_len`); a multiple of `patches`. */
  length: number;
  /** Input channels; each is encoded separately (after the adapter, when there is one). */
  channels: number;
  /** Number of classes V. */
  classes: number;
  /** Number of patches (tokens) P (`num_patches`). */
  patches: number;
  /** Token width W (`hidden_dim`). */
  dim: number;
  /** Transformer layers (`transf_depth`). */
  depth: number;
  /** Attention heads (`transf_num_heads`). */
  heads: number;
  /** Width of each head's queries, keys and values (`transf_dim_head`). */
  headDim: number;
  /** Hidden width of each layer's MLP (`transf_mlp_dim`). */
  mlpDim: number;
  /** Width of each scalar encoder (`hidden_dim_scalar_enc`). */
  scalarDim: number;
  /** Scales of the multi-scale scalar encoder (`scalar_scales`). */
  scalarScales: number[];
  /** ε of the scalar encoder's scale weights (`epsilon_scalar_enc`). */
  scalarEpsilon: number;
  /** The head's normalisation: 'batchnorm' (BatchNorm1d, MantisTrainer's default) or 'layernorm'. */
  headNorm: 'batchnorm' | 'layernorm';
  /** Channels after the adapter (LinearChannelCombiner), 0 for none. */
  adapterChannels: number;
  /** Dropout rate (identity at inference). */
  dropout: number;
  /** Seed of the initial weights. */
  seed: number;
}

/** Mantis-8M: 8 040 714 trainable parameters with one channel and 10 classes (8 037 632 in the encoder). */
export const MANTIS_DEFAULTS: MantisConfig = {
  length: 512,
  channels: 1,
  classes: 10,
  patches: 32,
  dim: 256,
  depth: 6,
  heads: 8,
  headDim: 128,
  mlpDim: 512,
  scalarDim: 32,
  scalarScales: [1e-4, 1e-3, 1e-2, 1e-1, 1, 1e1, 1e2, 1e3, 1e4],
  scalarEpsilon: 1.1,
  headNorm: 'batchnorm',
  adapterChannels: 0,
  dropout: 0.1,
  seed: 1,
};

/** The named parameter subsets of a Mantis model (its fine-tuning modes; 'full' is 'all'). */
export const MANTIS_SUBSETS = {
  /** `fine_tuning_type='head'`: the head's normalisation and linear layer. */
  head: ['head_norm', 'head'],
  /** `fine_tuning_type='adapter_head'`: the channel adapter (if configured) and the head. */
  adapter_head: ['adapter', 'head_norm', 'head'],
} as const;

/** The full config with defaults, checked; throws a message that names the field. */
export function mantisConfig(config: Partial<MantisConfig> = {}): MantisConfig {
  const c: MantisConfig = { ...MANTIS_DEFAULTS, ...config };
  throwFirst(mantisProblems(c));
  return c;
}

/**
 * What keeps a full Mantis config from being built: integer sizes, whole patches of at least two
 * time steps each (a patch's standard deviation is unbiased), positive scalar-encoder scales, a
 * known head normalisation. Empty when it can be built.
 */
export function mantisProblems(config: MantisConfig): ConfigProblem[] {
  const c = config as unknown as Record<string, unknown>;
  const out: ConfigProblem[] = [];
  for (const k of ['length', 'channels', 'classes', 'patches', 'dim', 'heads', 'headDim', 'mlpDim', 'scalarDim'] as const) out.push(...intProblem('mantis', c, k, 1));
  out.push(...intProblem('mantis', c, 'depth', 0), ...intProblem('mantis', c, 'adapterChannels', 0), ...dropoutProblem('mantis', c), ...seedProblem('mantis', c));
  if (!Array.isArray(c.scalarScales) || c.scalarScales.length === 0 || c.scalarScales.some((s) => typeof s !== 'number' || !(s > 0))) {
    out.push({ key: 'scalarScales', message: `mantis: scalarScales must be a non-empty list of positive numbers; got ${JSON.stringify(c.scalarScales)}` });
  }
  if (typeof c.scalarEpsilon !== 'number' || !Number.isFinite(c.scalarEpsilon)) {
    out.push({ key: 'scalarEpsilon', message: `mantis: scalarEpsilon must be a finite number; got ${JSON.stringify(c.scalarEpsilon)}` });
  }
  if (c.headNorm !== 'batchnorm' && c.headNorm !== 'layernorm') out.push({ key: 'headNorm', message: `mantis: headNorm must be 'batchnorm' or 'layernorm'; got ${JSON.stringify(c.headNorm)}` });
  if (out.some((p) => p.key === 'length' || p.key === 'patches')) return out;
  const { length, patches } = config;
  // Patches of at least 2 steps: patches ≤ length / 2.
  const choices = () => divisorList(length, (d) => length / d >= 2);
  if (length % patches !== 0) {
    out.push({ key: 'patches', message: `mantis: length ${length} must be a multiple of patches ${patches} (choose patches among ${choices() || 'none'}, or resample the data set)` });
  } else if (length / patches < 2) {
    out.push({
      key: 'patches',
      message: `mantis: patches need at least 2 time steps each (their std is unbiased); length ${length} in ${patches} patches gives ${length / patches} (choose patches among ${choices() || 'none'}, or resample the data set)`,
    });
  }
  return out;
}

/** The token generator's convolution kernel: the patch window, made odd (Mantis: +1 if even). */
export function mantisKernelSize(c: Pick<MantisConfig, 'length' | 'patches'>): number {
  const w = c.length / c.patches;
  return w % 2 === 0 ? w + 1 : w;
}

/**
 * Builds Mantis for input [n, length, channels] → logits [n, classes].
 *
 * Per channel series x (after the optional adapter, a Dense over channels = Mantis's
 * `LinearChannelCombiner`), the token generator (`TokenGeneratorUnit`) makes P tokens:
 * - `conv_diff`: Conv1d(1 → W, kernel k = window (+1 if even), padding k//2) of the first
 *   difference of x (a zero appended), normalised as (d − mean)/(std + 1e-5) over the series;
 *   `conv_series` the same of x itself; each through LayerNorm (ε 1e-5, `ln_diff`,
 *   `ln_series`) and averaged over each patch's window (`pool_diff`, `pool_series`);
 * - `scalar_mean`, `scalar_std`: the mean and standard deviation of each patch of the raw x,
 *   each through a multi-scale scalar encoder (`ScalarEncoder`, width `scalarDim`);
 * - their concatenation [diff | series | mean | std] (2W + 2·scalarDim) through `token_proj`
 *   (Linear → W) and `token_norm` (LayerNorm, ε 1e-15).
 * The difference and the patch statistics carry no gradient (Mantis computes them under
 * `torch.no_grad`), and standard deviations are unbiased (`torch.std`).
 *
 * The transformer (`TransformerUnit`): a CLS token (`cls`) before the P tokens, sinusoidal
 * positions (`pos`; dropout after it is identity at inference), `depth` pre-norm layers
 * `block{i}_*`: LayerNorm (ε 1e-5) → `qkv` (Linear W → 3·heads·headDim, no bias) →
 * multi-head attention (scale headDim^−½) → `proj` (Linear → W; absent when heads = 1 and
 * headDim = W, as in Mantis) → residual; LayerNorm → `mlp1` (GELU, exact) → `mlp2` → residual.
 * There is no final LayerNorm: the encoder's output is the CLS token (`cls_out`), taken in the
 * last layer right after its attention (`block{depth−1}_attn_cls`; what follows is per token).
 *
 * The head (`MantisTrainer.fit`'s default): the channels' embeddings concatenated in channel
 * order (`embedding`, W·channels), `head_norm` (BatchNorm1d, ε 1e-5, running statistics at
 * inference; or LayerNorm, ε 1e-5) and `head` (Linear → classes).
 *
 * Choices where the original leaves room, documented: the pre-training projector `prj` is not
 * part of the classifier (a checkpoint's `prj.*` tensors are ignored on import); the initial
 * weights are seeded stand-ins (real use loads a checkpoint); `MANTIS_SUBSETS` names the
 * fine-tuning modes' parameters ('head', 'adapter_head'; 'full' is the engine's 'all').
 */
export function mantis(config: Partial<MantisConfig> = {}): tf.LayersModel {
  const c = mantisConfig(config);
  let seed = c.seed * 1000;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const bias = () => tf.initializers.randomUniform({ minval: -0.02, maxval: 0.02, seed: seed++ });
  const norm = (name: string, epsilon: number) =>
    tf.layers.layerNormalization({
      name,
      epsilon,
      gammaInitializer: tf.initializers.randomUniform({ minval: 0.9, maxval: 1.1, seed: seed++ }),
      betaInitializer: bias(),
    });
  const dense = (units: number, name: string, opts: { activation?: 'gelu'; useBias?: boolean } = {}) =>
    tf.layers.dense({ units, name, activation: opts.activation, useBias: opts.useBias ?? true, kernelInitializer: init(), biasInitializer: bias() });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [c.length, c.channels], name: 'input' });
  let x = input;
  if (c.adapterChannels > 0) x = apply(dense(c.adapterChannels, 'adapter'), x);
  const series = apply(new ChannelSeries({ name: 'series' }), x); // [n, G, L, 1]

  // Token generator.
  const k = mantisKernelSize(c);
  const conv = (name: string) => new SeriesConv({ name, filters: c.dim, kernelSize: k, padding: Math.floor(k / 2), seed: seed++ });
  const branch = (from: tf.SymbolicTensor, tag: 'diff' | 'series') => {
    let y = apply(new SeriesNorm({ name: `norm_${tag}`, epsilon: 1e-5 }), from);
    y = apply(conv(`conv_${tag}`), y);
    y = apply(norm(`ln_${tag}`, 1e-5), y);
    return apply(new PatchMean({ name: `pool_${tag}`, patches: c.patches }), y);
  };
  const diff = apply(new SeriesDiff({ name: 'diff' }), series);
  const scalar = (stat: 'mean' | 'std') => {
    const s = apply(new PatchStats({ name: `stat_${stat}`, patches: c.patches, stat }), series);
    return apply(new ScalarEncoder({ name: `scalar_${stat}`, units: c.scalarDim, scales: c.scalarScales, epsilon: c.scalarEpsilon, lnEpsilon: 1e-15, seed: seed++ }), s);
  };
  const parts = [branch(diff, 'diff'), branch(series, 'series'), scalar('mean'), scalar('std')];
  let t = apply(tf.layers.concatenate({ name: 'tokens', axis: -1 }), parts); // [n, G, P, 2W + 2H]
  t = apply(dense(c.dim, 'token_proj'), t);
  t = apply(norm('token_norm', 1e-15), t);

  // Transformer.
  t = apply(new ClassToken({ name: 'cls', seed: seed++ }), t);
  t = apply(new SinusoidalPosition({ name: 'pos' }), t);
  const inner = c.heads * c.headDim;
  const projectOut = !(c.heads === 1 && c.headDim === c.dim);
  for (let b = 0; b < c.depth; b++) {
    const p = `block${b}`;
    let y = apply(norm(`${p}_ln1`, 1e-5), t);
    y = apply(dense(3 * inner, `${p}_qkv`, { useBias: false }), y);
    y = apply(new SelfAttention({ heads: c.heads, name: `${p}_attn` }), y);
    if (b === c.depth - 1) {
      // Only the CLS token leaves the encoder, and after the last attention every layer is per
      // token: the rest of the last layer runs on that token alone (same numbers, 1/P of the work).
      y = apply(new TakeToken({ index: 0, name: `${p}_attn_cls` }), y);
      t = apply(new TakeToken({ index: 0, name: 'cls_out' }), t);
    }
    if (projectOut) y = apply(dense(c.dim, `${p}_proj`), y);
    if (c.dropout > 0) y = apply(tf.layers.dropout({ rate: c.dropout, name: `${p}_drop1` }), y);
    t = apply(tf.layers.add({ name: `${p}_add1` }), [t, y]);
    y = apply(norm(`${p}_ln2`, 1e-5), t);
    y = apply(dense(c.mlpDim, `${p}_mlp1`, { activation: 'gelu' }), y);
    y = apply(dense(c.dim, `${p}_mlp2`), y);
    if (c.dropout > 0) y = apply(tf.layers.dropout({ rate: c.dropout, name: `${p}_drop2` }), y);
    t = apply(tf.layers.add({ name: `${p}_add2` }), [t, y]);
  }
  let h = c.depth > 0 ? t : apply(new TakeToken({ index: 0, name: 'cls_out' }), t); // [n, G, W]
  h = apply(tf.layers.flatten({ name: 'embedding' }), h); // [n, G·W], channel-major like torch.cat
  h = apply(
    c.headNorm === 'batchnorm'
      ? tf.layers.batchNormalization({
          name: 'head_norm',
          epsilon: 1e-5,
          gammaInitializer: tf.initializers.randomUniform({ minval: 0.9, maxval: 1.1, seed: seed++ }),
          betaInitializer: bias(),
        })
      : norm('head_norm', 1e-5),
    h,
  );
  const logits = apply(dense(c.classes, 'head'), h);
  return tf.model({ inputs: input, outputs: logits, name: 'mantis' });
}
