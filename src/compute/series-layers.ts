/**
 * The layers of Mantis's token generator that tfjs-layers does not have (see `mantis()` in
 * mantis.ts). Mantis encodes every channel of a series on its own with shared weights, so these
 * work on one sequence per channel, [n, G, T, C] (G = channels), and the transformer layers of
 * layers.ts accept the same leading axis. Each layer is registered for (de)serialisation, and
 * its math is a pure function here that the fast path (ops/series.ts) calls too, so the two
 * cannot drift apart.
 *
 * - ChannelSeries: [n, L, G] → [n, G, L, 1], every channel its own univariate series.
 * - SeriesNorm: (x − mean) / (std + ε) over time, std unbiased (PyTorch's `torch.std`).
 * - SeriesDiff: first difference over time with a zero appended; no gradient.
 * - PatchStats: mean or unbiased std of each of P patches, [n, G, L, 1] → [n, G, P, 1]; no gradient.
 * - PatchMean: mean of each of P patches, [n, G, L, C] → [n, G, P, C].
 * - SeriesConv: a Conv1D over time of every series, zero padding `padding` on both sides.
 * - ScalarEncoder: Mantis's multi-scale encoder of a scalar, [n, G, P, 1] → [n, G, P, units].
 *
 * "No gradient": Mantis computes the difference and the patch statistics under
 * `torch.no_grad()`, so nothing upstream of them (a channel adapter) receives a gradient through
 * them. The layers reproduce that with `tf.customGrad` (zero gradient), the fast path by not
 * propagating a signal, so that J is the Jacobian PyTorch's autograd gives for the same model.
 */
import * as tf from '@tensorflow/tfjs';

type Kwargs = Record<string, unknown>;
type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  if (x === undefined) throw new Error('expected one input tensor');
  return x;
}

function oneShape(shape: tf.Shape | tf.Shape[]): tf.Shape {
  const s = Array.isArray(shape[0]) ? (shape as tf.Shape[])[0] : (shape as tf.Shape);
  if (s === undefined) throw new Error('expected one input shape');
  return s;
}

/** Identity forward with a zero gradient (PyTorch's `no_grad` / `detach`). */
function noGradient(f: (x: tf.Tensor) => tf.Tensor): (x: tf.Tensor) => tf.Tensor {
  const fn = (x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x]);
    return { value: f(x), gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => tf.zerosLike(saved[0] as tf.Tensor) };
  };
  return tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;
}

// ---------------------------------------------------------------------------------------------
// Pure functions (shared with the fast path)

/** [n, L, G] → [n, G, L, 1]. */
export function channelSeries(x: tf.Tensor): tf.Tensor {
  const [n, l, g] = x.shape as number[] as [number, number, number];
  return tf.reshape(tf.transpose(x, [0, 2, 1]), [n, g, l, 1]);
}

/** Pieces of `seriesNorm` that its backward reuses: centred x, std s and 1/(s + ε), per series. */
export function seriesNormParts(x: tf.Tensor, epsilon: number): { xc: tf.Tensor; s: tf.Tensor; r: tf.Tensor; out: tf.Tensor } {
  const axis = x.rank - 2;
  const l = x.shape[axis] as number;
  const xc = tf.sub(x, tf.mean(x, axis, true));
  const s = tf.sqrt(tf.div(tf.sum(tf.square(xc), axis, true), Math.max(l - 1, 1)));
  const r = tf.reciprocal(tf.add(s, epsilon));
  return { xc, s, r, out: tf.mul(xc, r) };
}

/** (x − mean) / (std + ε) over the time axis (second to last) of [n, …, L, 1], std unbiased. */
export function seriesNorm(x: tf.Tensor, epsilon: number): tf.Tensor {
  return seriesNormParts(x, epsilon).out;
}

/** x[t+1] − x[t] over time, with a zero at the end (same length), [n, …, L, C]. */
export function seriesDiff(x: tf.Tensor): tf.Tensor {
  const axis = x.rank - 2;
  const l = x.shape[axis] as number;
  const size = x.shape.slice();
  size[axis] = l - 1;
  const begin = x.shape.map(() => 0);
  const next = tf.slice(x, begin.map((b, i) => (i === axis ? 1 : b)), size);
  const d = tf.sub(next, tf.slice(x, begin, size));
  const pads: Array<[number, number]> = x.shape.map((): [number, number] => [0, 0]);
  pads[axis] = [0, 1];
  return tf.pad(d, pads);
}

/** [n, …, L, C] → [n, …, P, L/P, C]. */
function patchWindows(x: tf.Tensor, patches: number): tf.Tensor {
  const s = x.shape;
  const l = s[s.length - 2] as number;
  if (l % patches !== 0) throw new Error(`series length ${l} is not a multiple of ${patches} patches`);
  return tf.reshape(x, [...s.slice(0, -2), patches, l / patches, s[s.length - 1] as number]);
}

/** Mean or unbiased std of each patch of the time axis: [n, …, L, C] → [n, …, P, C]. */
export function patchStat(x: tf.Tensor, patches: number, stat: 'mean' | 'std'): tf.Tensor {
  const w = patchWindows(x, patches);
  const axis = w.rank - 2;
  if (stat === 'mean') return tf.mean(w, axis);
  const m = w.shape[axis] as number;
  const c = tf.sub(w, tf.mean(w, axis, true));
  return tf.sqrt(tf.div(tf.sum(tf.square(c), axis), Math.max(m - 1, 1)));
}

/** The weights of a ScalarEncoder, read and stacked over scales: [S, units] each. */
export interface ScalarWeights {
  w: tf.Tensor2D;
  b: tf.Tensor2D;
  gamma: tf.Tensor2D;
  beta: tf.Tensor2D;
}

/** What the ScalarEncoder's backward reuses; every tensor has the positions flattened to M. */
export interface ScalarParts {
  /** Input [M, 1]. */
  x: tf.Tensor2D;
  /** LayerNorm-normalised z_k (before γ, β), [M, S, H]; and 1/σ [M, S, 1]. */
  zn: tf.Tensor3D;
  rstd: tf.Tensor3D;
  /** γ ẑ + β, [M, S, H]. */
  zh: tf.Tensor3D;
  /** Unnormalised scale weights a_k = |1/log(|x|/s_k + ε)| [M, S], their sum [M, 1], α = a / Σa. */
  a: tf.Tensor2D;
  aSum: tf.Tensor2D;
  alpha: tf.Tensor2D;
  /** 1/log(|x|/s_k + ε) and |x|/s_k + ε, [M, S]. */
  inv: tf.Tensor2D;
  ratio: tf.Tensor2D;
  /** Output [M, H]. */
  y: tf.Tensor2D;
}

/**
 * Mantis's multi-scaled scalar encoder of each position's scalar x (the patch mean or std):
 *   z_k = x·w_k + s_k·b_k,  y = Σ_k α_k (γ_k ⊙ LN(z_k) + β_k),
 *   α_k = a_k / Σ_j a_j,  a_k = |1 / log(|x|/s_k + ε)|,
 * with scales s_k, LayerNorm over the `units` axis (ε_LN = `lnEpsilon`).
 */
export function scalarEncode(x: tf.Tensor, wts: ScalarWeights, scales: number[], epsilon: number, lnEpsilon: number): ScalarParts {
  const S = scales.length;
  const H = wts.w.shape[1];
  const xm = tf.reshape(x, [-1, 1]) as tf.Tensor2D;
  const sc = tf.tensor1d(scales);
  const z = tf.add(tf.mul(tf.reshape(xm, [-1, 1, 1]), tf.reshape(wts.w, [1, S, H])), tf.reshape(tf.mul(tf.reshape(sc, [S, 1]), wts.b), [1, S, H]));
  const { mean, variance } = tf.moments(z, 2, true);
  const rstd = tf.rsqrt(tf.add(variance, lnEpsilon)) as tf.Tensor3D;
  const zn = tf.mul(tf.sub(z, mean), rstd) as tf.Tensor3D;
  const zh = tf.add(tf.mul(zn, tf.reshape(wts.gamma, [1, S, H])), tf.reshape(wts.beta, [1, S, H])) as tf.Tensor3D;
  // Mantis: abs(1 / log(matmul(abs(x), 1 / scales) + ε)), normalised over the scales.
  const ratio = tf.add(tf.mul(tf.abs(xm), tf.reshape(tf.reciprocal(sc), [1, S])), epsilon) as tf.Tensor2D;
  const inv = tf.reciprocal(tf.log(ratio)) as tf.Tensor2D;
  const a = tf.abs(inv) as tf.Tensor2D;
  const aSum = tf.sum(a, 1, true) as tf.Tensor2D;
  const alpha = tf.div(a, aSum) as tf.Tensor2D;
  const y = tf.sum(tf.mul(zh, tf.reshape(alpha, [-1, S, 1])), 1) as tf.Tensor2D;
  return { x: xm, zn, rstd, zh, a, aSum, alpha, inv, ratio, y };
}

// ---------------------------------------------------------------------------------------------
// Layers

/** [n, L, G] → [n, G, L, 1]: each channel becomes its own univariate series. */
export class ChannelSeries extends tf.layers.Layer {
  static className = 'ChannelSeries';

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, l, g] = oneShape(inputShape);
    return [n ?? null, g ?? null, l ?? null, 1];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => channelSeries(one(inputs)));
  }
}

/** (x − mean) / (std + ε) of every series over time; std unbiased, ε added to the std. */
export class SeriesNorm extends tf.layers.Layer {
  static className = 'SeriesNorm';
  readonly epsilon: number;

  constructor(args: LayerArgs & { epsilon?: number } = {}) {
    super(args);
    this.epsilon = args.epsilon ?? 1e-5;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => seriesNorm(one(inputs), this.epsilon));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon };
  }
}

/** First difference over time, a zero appended; no gradient (Mantis: under `torch.no_grad`). */
export class SeriesDiff extends tf.layers.Layer {
  static className = 'SeriesDiff';

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => noGradient(seriesDiff)(one(inputs)));
  }
}

/** Mean or unbiased std of each of `patches` patches; no gradient (Mantis: under `torch.no_grad`). */
export class PatchStats extends tf.layers.Layer {
  static className = 'PatchStats';
  readonly patches: number;
  readonly stat: 'mean' | 'std';

  constructor(args: LayerArgs & { patches: number; stat: 'mean' | 'std' }) {
    super(args);
    this.patches = args.patches;
    this.stat = args.stat;
    if (this.stat !== 'mean' && this.stat !== 'std') throw new Error(`PatchStats: stat must be 'mean' or 'std'`);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    s[s.length - 2] = this.patches;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => noGradient((x) => patchStat(x, this.patches, this.stat))(one(inputs)));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), patches: this.patches, stat: this.stat };
  }
}

/** Mean of each of `patches` patches of the time axis: [n, …, L, C] → [n, …, P, C]. */
export class PatchMean extends tf.layers.Layer {
  static className = 'PatchMean';
  readonly patches: number;

  constructor(args: LayerArgs & { patches: number }) {
    super(args);
    this.patches = args.patches;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    s[s.length - 2] = this.patches;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => patchStat(one(inputs), this.patches, 'mean'));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), patches: this.patches };
  }
}

/**
 * A Conv1D (stride 1, linear) over the time axis of every series [n, …, L, Cin] → [n, …, L′,
 * filters], with `padding` zeros on both sides (PyTorch's `Conv1d(padding=p)`); weights `kernel`
 * [k, Cin, filters] (tfjs's Conv1D layout) and `bias` [filters], seeded Glorot-uniform and small
 * uniform initial values.
 */
export class SeriesConv extends tf.layers.Layer {
  static className = 'SeriesConv';
  readonly filters: number;
  readonly kernelSize: number;
  readonly padding: number;
  private readonly seed: number | undefined;
  private kernel: tf.LayerVariable | undefined;
  private bias: tf.LayerVariable | undefined;

  constructor(args: LayerArgs & { filters: number; kernelSize: number; padding?: number; seed?: number | null }) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = args.kernelSize;
    this.padding = args.padding ?? Math.floor(args.kernelSize / 2);
    this.seed = args.seed ?? undefined;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const s = oneShape(inputShape);
    const cin = s[s.length - 1];
    if (typeof cin !== 'number') throw new Error('SeriesConv needs a known channel dimension');
    const seed = this.seed;
    this.kernel = this.addWeight('kernel', [this.kernelSize, cin, this.filters], 'float32', tf.initializers.glorotUniform({ seed }));
    this.bias = this.addWeight('bias', [this.filters], 'float32', tf.initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed: seed === undefined ? undefined : seed + 1 }));
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    const l = s[s.length - 2];
    s[s.length - 2] = l == null ? null : l + 2 * this.padding - this.kernelSize + 1;
    s[s.length - 1] = this.filters;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      if (this.kernel === undefined || this.bias === undefined) throw new Error('SeriesConv used before build');
      const lead = x.shape.slice(0, -2);
      const [l, c] = x.shape.slice(-2) as [number, number];
      const xf = tf.reshape(x, [-1, l, c]) as tf.Tensor3D;
      const xp = this.padding > 0 ? tf.pad(xf, [[0, 0], [this.padding, this.padding], [0, 0]]) : xf;
      const z = tf.add(tf.conv1d(xp, this.kernel.read() as tf.Tensor3D, 1, 'valid'), this.bias.read());
      return tf.reshape(z, [...lead, ...z.shape.slice(1)]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, padding: this.padding, seed: this.seed ?? null };
  }
}

/**
 * Mantis's multi-scaled scalar encoder (`scalarEncode`). One weight group per scale k, in
 * PyTorch's order: `w{k}` [1, units], `b{k}` [1, units] (the ScalarEncoder's own parameters) and
 * `gamma{k}`, `beta{k}` [units] (its LayerNorm).
 */
export class ScalarEncoder extends tf.layers.Layer {
  static className = 'ScalarEncoder';
  readonly units: number;
  readonly scales: number[];
  readonly epsilon: number;
  readonly lnEpsilon: number;
  private readonly seed: number | undefined;
  readonly groups: Array<{ w: tf.LayerVariable; b: tf.LayerVariable; gamma: tf.LayerVariable; beta: tf.LayerVariable }> = [];

  constructor(args: LayerArgs & { units: number; scales: number[]; epsilon?: number; lnEpsilon?: number; seed?: number | null }) {
    super(args);
    this.units = args.units;
    this.scales = [...args.scales];
    this.epsilon = args.epsilon ?? 1.1;
    this.lnEpsilon = args.lnEpsilon ?? 1e-15;
    this.seed = args.seed ?? undefined;
    if (this.scales.length === 0 || this.scales.some((s) => !(s > 0))) throw new Error('ScalarEncoder: scales must be positive');
  }

  override build(_inputShape: tf.Shape | tf.Shape[]): void {
    const H = this.units;
    // Mantis initialises w and b with torch.rand (uniform [0, 1)) and LayerNorm with ones/zeros.
    let seed = this.seed === undefined ? undefined : this.seed * 100;
    const uniform = () => tf.initializers.randomUniform({ minval: 0, maxval: 1, seed: seed === undefined ? undefined : seed++ });
    this.scales.forEach((_, k) => {
      this.groups.push({
        w: this.addWeight(`w${k}`, [1, H], 'float32', uniform()),
        b: this.addWeight(`b${k}`, [1, H], 'float32', uniform()),
        gamma: this.addWeight(`gamma${k}`, [H], 'float32', tf.initializers.ones()),
        beta: this.addWeight(`beta${k}`, [H], 'float32', tf.initializers.zeros()),
      });
    });
    this.built = true;
  }

  /** The weights stacked over scales, [S, units] each (call inside a tidy). */
  stacked(): ScalarWeights {
    const cat = (k: 'w' | 'b' | 'gamma' | 'beta') => tf.reshape(tf.concat(this.groups.map((g) => tf.reshape(g[k].read(), [1, this.units])), 0), [this.scales.length, this.units]) as tf.Tensor2D;
    return { w: cat('w'), b: cat('b'), gamma: cat('gamma'), beta: cat('beta') };
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    s[s.length - 1] = this.units;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      const y = scalarEncode(x, this.stacked(), this.scales, this.epsilon, this.lnEpsilon).y;
      return tf.reshape(y, [...x.shape.slice(0, -1), this.units]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: this.units,
      scales: this.scales,
      epsilon: this.epsilon,
      lnEpsilon: this.lnEpsilon,
      seed: this.seed ?? null,
    };
  }
}

for (const cls of [ChannelSeries, SeriesNorm, SeriesDiff, PatchStats, PatchMean, SeriesConv, ScalarEncoder]) {
  tf.serialization.registerClass(cls as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);
}
