/**
 * PyTorch state_dicts (read from safetensors) onto Tangent's built-in architectures: one table
 * per architecture maps every PyTorch tensor name 1:1 to a tfjs weight, with its layout
 * (Linear weights [out, in] → Dense kernels [in, out]; Conv1d weights [out, in, k] → Conv1D
 * kernels [k, in, out]; LayerNorm/BatchNorm weight, bias, running_mean, running_var → gamma,
 * beta, moving_mean, moving_variance). The result is a checkpoint in the stored tfjs format.
 *
 * The PyTorch names are those of bench/torch_models.py: for Mantis the reference
 * implementation's own (MantisTrainer's `fine_tuned_model.state_dict()`: `encoder.*` of MantisV1
 * — `transf_unit` or the older Mantis8M's `vit_unit` — `head.*` and `adapter.*`); for cnn1d and
 * transformer plain PyTorch modules of those shapes. A file is refused, naming every problem at
 * once, when a weight is missing, a tensor is left over, or a shape differs. A few tensors are
 * known and not weights: buffers that the config determines (Mantis's scalar-encoder `scales`
 * and sinusoidal `pe`, checked against it), BatchNorm's `num_batches_tracked`, and Mantis's
 * pre-training projector `encoder.prj.*` (not part of the classifier); they are skipped and
 * reported.
 */
import {
  CNN1D_DEFAULTS,
  MANTIS_DEFAULTS,
  TRANSFORMER_DEFAULTS,
  mantisConfig,
  mantisKernelSize,
} from '../compute/index.js';
import type { Cnn1dConfig, MantisConfig, TransformerConfig } from '../compute/index.js';
import { sinusoidalCode } from '../compute/layers.js';
import type { SafetensorsFile, SafetensorsTensor } from './safetensors.js';

/** The architectures a PyTorch checkpoint can be imported into. */
export const TORCH_ARCHITECTURES = ['mantis', 'cnn1d', 'transformer'] as const;
export type TorchArchitecture = (typeof TORCH_ARCHITECTURES)[number];

/** How a PyTorch tensor becomes a tfjs weight. */
export type Layout = 'same' | 'linear' | 'conv';

/** One row of a mapping table. */
export interface MappedWeight {
  /** tfjs weight name (`layer/weight`). */
  tfjs: string;
  /** tfjs shape. */
  shape: number[];
  /** PyTorch name(s): the first is the canonical one; any other is an accepted alias. */
  torch: string[];
  /** PyTorch shape. */
  torchShape: number[];
  layout: Layout;
}

/** A known tensor that is not a weight: checked (when `check` is given) and skipped. */
export interface KnownTensor {
  /** Exact name, or a pattern. */
  name: string | RegExp;
  why: string;
  /** Returns a problem, or null when the tensor agrees with the config. */
  check?: (t: SafetensorsTensor) => string | null;
}

export interface ImportTable {
  architecture: TorchArchitecture;
  /** The config with every default filled in. */
  config: Record<string, unknown>;
  weights: MappedWeight[];
  known: KnownTensor[];
}

/** Why a file does not fit the architecture; `problems` lists every one found. */
export class TorchImportError extends Error {
  override name = 'TorchImportError';
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? (problems[0] as string) : `${problems.length} problems: ${problems.join('; ')}`);
  }
}

const linear = (tfjs: string, torch: string[], din: number, dout: number): MappedWeight => ({ tfjs, shape: [din, dout], torch, torchShape: [dout, din], layout: 'linear' });
const conv = (tfjs: string, torch: string[], k: number, cin: number, cout: number): MappedWeight => ({ tfjs, shape: [k, cin, cout], torch, torchShape: [cout, cin, k], layout: 'conv' });
const same = (tfjs: string, torch: string[], shape: number[]): MappedWeight => ({ tfjs, shape, torch, torchShape: shape, layout: 'same' });

/** A PyTorch Linear → a tfjs Dense (kernel, and bias unless `bias` is false). */
function dense(layer: string, torch: string[], din: number, dout: number, bias = true): MappedWeight[] {
  const rows = [linear(`${layer}/kernel`, torch.map((t) => `${t}.weight`), din, dout)];
  if (bias) rows.push(same(`${layer}/bias`, torch.map((t) => `${t}.bias`), [dout]));
  return rows;
}

/** A PyTorch LayerNorm → a tfjs LayerNormalization. */
function layerNorm(layer: string, torch: string[], dim: number): MappedWeight[] {
  return [same(`${layer}/gamma`, torch.map((t) => `${t}.weight`), [dim]), same(`${layer}/beta`, torch.map((t) => `${t}.bias`), [dim])];
}

/** A PyTorch BatchNorm1d (running statistics) → a tfjs BatchNormalization. */
function batchNorm(layer: string, torch: string, dim: number): MappedWeight[] {
  return [
    same(`${layer}/gamma`, [`${torch}.weight`], [dim]),
    same(`${layer}/beta`, [`${torch}.bias`], [dim]),
    same(`${layer}/moving_mean`, [`${torch}.running_mean`], [dim]),
    same(`${layer}/moving_variance`, [`${torch}.running_var`], [dim]),
  ];
}

/** Relative rounding of a tensor's file dtype (a buffer saved in half precision is still the same buffer). */
function precision(t: SafetensorsTensor): number {
  return t.dtype === 'BF16' ? 2 ** -8 : t.dtype === 'F16' ? 2 ** -11 : 1e-6;
}

function closeTo(values: ArrayLike<number>, expected: ArrayLike<number>, tol: (e: number) => number): boolean {
  if (values.length !== expected.length) return false;
  for (let i = 0; i < values.length; i++) if (!(Math.abs((values[i] as number) - (expected[i] as number)) <= tol(expected[i] as number))) return false;
  return true;
}

function mantisTable(config: Record<string, unknown>): ImportTable {
  let c: MantisConfig;
  try {
    c = mantisConfig(config as Partial<MantisConfig>);
  } catch (error) {
    throw new TorchImportError([(error as Error).message]);
  }
  const W = c.dim;
  const H = c.scalarDim;
  const k = mantisKernelSize(c);
  const inner = c.heads * c.headDim;
  const tok = 'encoder.tokgen_unit';
  // MantisV1 names its transformer `transf_unit`; the older Mantis8M `vit_unit`.
  const units = ['encoder.transf_unit', 'encoder.vit_unit'];
  const weights: MappedWeight[] = [];
  if (c.adapterChannels > 0) weights.push(...dense('adapter', ['adapter.transformation'], c.channels, c.adapterChannels));
  weights.push(conv('conv_diff/kernel', [`${tok}.convs.0.conv.weight`], k, 1, W), same('conv_diff/bias', [`${tok}.convs.0.conv.bias`], [W]));
  weights.push(conv('conv_series/kernel', [`${tok}.convs.1.conv.weight`], k, 1, W), same('conv_series/bias', [`${tok}.convs.1.conv.bias`], [W]));
  weights.push(...layerNorm('ln_diff', [`${tok}.layer_norms.0`], W), ...layerNorm('ln_series', [`${tok}.layer_norms.1`], W));
  (['mean', 'std'] as const).forEach((stat, e) => {
    c.scalarScales.forEach((_, s) => {
      const t = `${tok}.scalar_encoders.${e}.encoders.${s}`;
      weights.push(
        same(`scalar_${stat}/w${s}`, [`${t}.w`], [1, H]),
        same(`scalar_${stat}/b${s}`, [`${t}.b`], [1, H]),
        same(`scalar_${stat}/gamma${s}`, [`${t}.layer_norm.weight`], [H]),
        same(`scalar_${stat}/beta${s}`, [`${t}.layer_norm.bias`], [H]),
      );
    });
  });
  weights.push(...dense('token_proj', [`${tok}.linear_encoder.linear`], 2 * W + 2 * H, W), ...layerNorm('token_norm', [`${tok}.linear_encoder.layer_norm`], W));
  weights.push(same('cls/token', units.map((u) => `${u}.cls_token`), [W]));
  for (let b = 0; b < c.depth; b++) {
    const l = units.map((u) => `${u}.transformer.layers.${b}`);
    weights.push(...layerNorm(`block${b}_ln1`, l.map((p) => `${p}.0.norm`), W));
    weights.push(...dense(`block${b}_qkv`, l.map((p) => `${p}.0.fn.to_qkv`), W, 3 * inner, false));
    if (!(c.heads === 1 && c.headDim === W)) weights.push(...dense(`block${b}_proj`, l.map((p) => `${p}.0.fn.to_out.0`), inner, W));
    weights.push(...layerNorm(`block${b}_ln2`, l.map((p) => `${p}.1.norm`), W));
    weights.push(...dense(`block${b}_mlp1`, l.map((p) => `${p}.1.fn.net.0`), W, c.mlpDim));
    weights.push(...dense(`block${b}_mlp2`, l.map((p) => `${p}.1.fn.net.3`), c.mlpDim, W));
  }
  const features = W * (c.adapterChannels > 0 ? c.adapterChannels : c.channels);
  weights.push(...(c.headNorm === 'batchnorm' ? batchNorm('head_norm', 'head.0', features) : layerNorm('head_norm', ['head.0'], features)));
  weights.push(...dense('head', ['head.1'], features, c.classes));

  const scales = Float32Array.from(c.scalarScales);
  const pe = sinusoidalCode(c.patches + 1, W);
  const known: KnownTensor[] = [
    {
      name: new RegExp(`^${tok.replace(/\./g, '\\.')}\\.scalar_encoders\\.[01]\\.scales$`),
      why: "the scalar encoder's scales (a buffer), checked against config.scalarScales",
      check: (t) =>
        closeTo(t.values, scales, (e) => precision(t) * Math.abs(e))
          ? null
          : `${t.name} is [${Array.from(t.values).join(', ')}] but config.scalarScales is [${c.scalarScales.join(', ')}]`,
    },
    {
      name: /^encoder\.(transf_unit|vit_unit)\.pos_encoder\.pe$/,
      why: 'the sinusoidal position code (a buffer), checked against the one Tangent computes',
      check: (t) => {
        const [len, one, d] = t.shape;
        if (t.shape.length !== 3 || one !== 1 || d !== W || (len as number) < c.patches + 1) {
          return `${t.name} has shape [${t.shape.join(', ')}]; expected [≥ ${c.patches + 1}, 1, ${W}]`;
        }
        return closeTo(t.values.subarray(0, (c.patches + 1) * W), pe, () => Math.max(1e-4, 2 * precision(t))) ? null : `${t.name} differs from the sinusoidal code of width ${W}`;
      },
    },
    { name: /^encoder\.prj\./, why: "Mantis's pre-training projector, not part of the classifier" },
    { name: /\.num_batches_tracked$/, why: "BatchNorm's step counter, unused at inference" },
  ];
  return { architecture: 'mantis', config: c as unknown as Record<string, unknown>, weights, known };
}

function positiveInts(c: Record<string, unknown>, keys: string[], arch: string): void {
  for (const k of keys) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TorchImportError([`${arch}: config.${k} must be a positive integer; got ${JSON.stringify(v)}`]);
  }
}

function cnn1dTable(config: Record<string, unknown>): ImportTable {
  const c: Cnn1dConfig = { ...CNN1D_DEFAULTS, ...(config as Partial<Cnn1dConfig>) };
  positiveInts(c as unknown as Record<string, unknown>, ['length', 'channels', 'classes'], 'cnn1d');
  const list = (v: unknown) => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 1);
  if (!list(c.filters) || !list(c.kernelSizes) || c.filters.length !== c.kernelSizes.length) {
    throw new TorchImportError(['cnn1d: config.filters and config.kernelSizes must be non-empty lists of positive integers of equal length']);
  }
  const weights: MappedWeight[] = [];
  let cin = c.channels;
  c.filters.forEach((f, i) => {
    weights.push(conv(`conv${i + 1}/kernel`, [`convs.${i}.weight`], c.kernelSizes[i] as number, cin, f), same(`conv${i + 1}/bias`, [`convs.${i}.bias`], [f]));
    cin = f;
  });
  weights.push(...dense('head', ['head'], cin, c.classes));
  return { architecture: 'cnn1d', config: c as unknown as Record<string, unknown>, weights, known: [] };
}

function transformerTable(config: Record<string, unknown>): ImportTable {
  const c: TransformerConfig = { ...TRANSFORMER_DEFAULTS, ...(config as Partial<TransformerConfig>) };
  positiveInts(c as unknown as Record<string, unknown>, ['length', 'channels', 'classes', 'patch', 'dim', 'heads', 'mlpDim'], 'transformer');
  if (!Number.isInteger(c.depth) || c.depth < 0) throw new TorchImportError(['transformer: config.depth must be a non-negative integer']);
  if (c.length % c.patch !== 0) throw new TorchImportError([`transformer: config.length ${c.length} must be a multiple of config.patch ${c.patch}`]);
  if (c.dim % c.heads !== 0) throw new TorchImportError([`transformer: config.dim ${c.dim} must be divisible by config.heads ${c.heads}`]);
  const d = c.dim;
  const weights: MappedWeight[] = [conv('patch/kernel', ['patch.weight'], c.patch, c.channels, d), same('patch/bias', ['patch.bias'], [d])];
  weights.push(...layerNorm('patch_norm', ['patch_norm'], d), same('cls/token', ['cls'], [d]));
  for (let b = 0; b < c.depth; b++) {
    const p = `blocks.${b}`;
    weights.push(
      ...layerNorm(`block${b}_ln1`, [`${p}.ln1`], d),
      ...dense(`block${b}_qkv`, [`${p}.qkv`], d, 3 * d),
      ...dense(`block${b}_proj`, [`${p}.proj`], d, d),
      ...layerNorm(`block${b}_ln2`, [`${p}.ln2`], d),
      ...dense(`block${b}_mlp1`, [`${p}.mlp1`], d, c.mlpDim),
      ...dense(`block${b}_mlp2`, [`${p}.mlp2`], c.mlpDim, d),
    );
  }
  weights.push(...layerNorm('head_norm', ['head_norm'], d), ...dense('head', ['head'], d, c.classes));
  return { architecture: 'transformer', config: c as unknown as Record<string, unknown>, weights, known: [] };
}

/** The mapping table of an architecture for a config (defaults filled in). */
export function torchImportTable(architecture: TorchArchitecture, config: Record<string, unknown> = {}): ImportTable {
  switch (architecture) {
    case 'mantis':
      return mantisTable(config);
    case 'cnn1d':
      return cnn1dTable(config);
    case 'transformer':
      return transformerTable(config);
    default:
      throw new TorchImportError([`unknown architecture '${String(architecture)}'; known: ${TORCH_ARCHITECTURES.join(', ')}`]);
  }
}

/** PyTorch values in `from` layout → tfjs values. */
function relayout(values: Float32Array, layout: Layout, torchShape: number[]): Float32Array {
  if (layout === 'same') return values;
  const out = new Float32Array(values.length);
  if (layout === 'linear') {
    const [o, i] = torchShape as [number, number];
    for (let r = 0; r < o; r++) for (let q = 0; q < i; q++) out[q * o + r] = values[r * i + q] as number;
    return out;
  }
  const [o, i, k] = torchShape as [number, number, number];
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let j = 0; j < k; j++) out[(j * i + b) * o + a] = values[(a * i + b) * k + j] as number;
  return out;
}

const sameShape = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);
const fmt = (s: number[]) => `[${s.join(', ')}]`;

/** A checkpoint in the stored tfjs format, made from a PyTorch state_dict. */
export interface ImportedWeights {
  /** `{name, shape, dtype: 'float32'}` in the table's order. */
  weightSpecs: Array<{ name: string; shape: number[]; dtype: 'float32' }>;
  /** All weights, little-endian float32, in spec order. */
  weightData: Buffer;
  /** The config with defaults filled in. */
  config: Record<string, unknown>;
  /** Tensors skipped as known non-weights, with why. */
  ignored: Array<{ name: string; why: string }>;
  /** PyTorch name → tfjs name, for every weight. */
  mapping: Array<{ torch: string; tfjs: string; layout: Layout }>;
}

/**
 * Maps a safetensors state_dict onto an architecture.
 * @throws TorchImportError listing every missing, extra, duplicate-alias, mis-shaped or
 *   mis-typed tensor, and every known buffer that contradicts the config.
 */
export function importTorchWeights(architecture: TorchArchitecture, config: Record<string, unknown>, file: SafetensorsFile): ImportedWeights {
  const table = torchImportTable(architecture, config);
  const problems: string[] = [];
  const used = new Set<string>();
  const parts: Float32Array[] = [];
  const mapping: ImportedWeights['mapping'] = [];
  for (const w of table.weights) {
    const present = w.torch.filter((n) => file.tensors.has(n));
    if (present.length === 0) {
      problems.push(`missing tensor '${w.torch[0]}' (${fmt(w.torchShape)}, for ${w.tfjs})`);
      continue;
    }
    if (present.length > 1) problems.push(`tensors ${present.map((n) => `'${n}'`).join(' and ')} are the same weight under two names`);
    const name = present[0] as string;
    present.forEach((n) => used.add(n));
    const t = file.tensors.get(name) as SafetensorsTensor;
    if (!(t.values instanceof Float32Array)) {
      problems.push(`tensor '${name}' is ${t.dtype}; a weight must be floating point (F32, F16, BF16 or F64)`);
      continue;
    }
    if (!sameShape(t.shape, w.torchShape)) {
      problems.push(`tensor '${name}' has shape ${fmt(t.shape)}; ${architecture} with this config needs ${fmt(w.torchShape)}`);
      continue;
    }
    parts.push(relayout(t.values, w.layout, w.torchShape));
    mapping.push({ torch: name, tfjs: w.tfjs, layout: w.layout });
  }
  const ignored: ImportedWeights['ignored'] = [];
  for (const [name, t] of file.tensors) {
    if (used.has(name)) continue;
    const known = table.known.find((k) => (typeof k.name === 'string' ? k.name === name : k.name.test(name)));
    if (known === undefined) {
      problems.push(`unexpected tensor '${name}' (${fmt(t.shape)}): ${architecture} has no such weight`);
      continue;
    }
    const problem = known.check?.(t) ?? null;
    if (problem !== null) problems.push(problem);
    else ignored.push({ name, why: known.why });
  }
  if (problems.length > 0) throw new TorchImportError(problems);
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  // Host byte order, as tfjs reads weight buffers (little-endian on every platform tfjs runs on).
  const weightData = Buffer.from(all.buffer, all.byteOffset, all.byteLength);
  return {
    weightSpecs: table.weights.map((w) => ({ name: w.tfjs, shape: w.shape, dtype: 'float32' as const })),
    weightData,
    config: table.config,
    ignored,
    mapping,
  };
}

/** Defaults of each architecture's config (for documentation and the API). */
export const TORCH_DEFAULTS: Record<TorchArchitecture, Record<string, unknown>> = {
  mantis: MANTIS_DEFAULTS as unknown as Record<string, unknown>,
  cnn1d: CNN1D_DEFAULTS as unknown as Record<string, unknown>,
  transformer: TRANSFORMER_DEFAULTS as unknown as Record<string, unknown>,
};
