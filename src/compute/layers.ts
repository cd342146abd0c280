/**
 * The few layers a Mantis-style transformer needs that tfjs-layers does not have. Each is
 * registered for (de)serialisation, so a stored model.json that names them loads once this
 * module is imported; the fast path knows each by its class name.
 *
 * Each works on token sequences [n, T, d] and, for Mantis (which encodes every channel of a
 * series separately), on one sequence per channel [n, G, T, d]: leading axes between the batch
 * and the token axis are independent sequences.
 *
 * - ClassToken: prepends a learned vector to a token sequence, [n, …, T, d] → [n, …, T+1, d].
 * - SinusoidalPosition: adds the fixed sinusoidal position code, [n, …, T, d] → [n, …, T, d].
 * - SelfAttention: scaled dot-product attention with `heads` heads and no weights of its own,
 *   on packed projections [n, …, T, 3d] = [q | k | v] → [n, …, T, d]. The q/k/v and output
 *   projections are ordinary Dense layers around it.
 * - TakeToken: selects one token, [n, …, T, d] → [n, …, d].
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

/** Prepends a learned token (weight `token`, shape [d]). */
export class ClassToken extends tf.layers.Layer {
  static className = 'ClassToken';
  private initializerSeed: number | undefined;
  private token: tf.LayerVariable | undefined;

  constructor(args: LayerArgs & { seed?: number | null } = {}) {
    super(args);
    this.initializerSeed = args.seed ?? undefined;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const s = oneShape(inputShape);
    const d = s[s.length - 1];
    if (typeof d !== 'number') throw new Error('ClassToken needs a known last dimension');
    this.token = this.addWeight(
      'token',
      [d],
      'float32',
      tf.initializers.truncatedNormal({ stddev: 0.02, seed: this.initializerSeed }),
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    const t = s[s.length - 2];
    s[s.length - 2] = t == null ? null : t + 1;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      if (this.token === undefined) throw new Error('ClassToken used before build');
      return prependToken(x, this.token.read());
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), seed: this.initializerSeed ?? null };
  }
}

/** [n, …, T, d] → [n, …, T+1, d] with `token` [d] first in every sequence. */
export function prependToken(x: tf.Tensor, token: tf.Tensor): tf.Tensor {
  const s = x.shape;
  const d = s[s.length - 1] as number;
  const tok = tf.add(tf.zeros([...s.slice(0, -2), 1, d]), tf.reshape(token, [...s.slice(0, -1).map(() => 1), d]));
  return tf.concat([tok, x], x.rank - 2);
}

/** Adds the sinusoidal code of the last two axes [T, d] to x [n, …, T, d]. */
export function addPositions(x: tf.Tensor): tf.Tensor {
  const t = x.shape[x.rank - 2] as number;
  const d = x.shape[x.rank - 1] as number;
  return tf.add(x, tf.tensor2d(sinusoidalCode(t, d), [t, d]));
}

/** Token `index` of every sequence: [n, …, T, d] → [n, …, d]. */
export function takeToken(x: tf.Tensor, index: number): tf.Tensor {
  const s = x.shape;
  const begin = s.map(() => 0);
  begin[s.length - 2] = index;
  const size = s.slice();
  size[s.length - 2] = 1;
  return tf.reshape(tf.slice(x, begin, size), [...s.slice(0, -2), s[s.length - 1] as number]);
}

const positionCache = new Map<string, Float32Array>();

/** The sinusoidal code of "Attention is all you need", [T, d], float32, cached per (T, d). */
export function sinusoidalCode(length: number, dim: number): Float32Array {
  const key = `${length}x${dim}`;
  let code = positionCache.get(key);
  if (code === undefined) {
    code = new Float32Array(length * dim);
    for (let t = 0; t < length; t++) {
      for (let i = 0; i < dim; i++) {
        const freq = Math.pow(10000, -(2 * Math.floor(i / 2)) / dim);
        code[t * dim + i] = i % 2 === 0 ? Math.sin(t * freq) : Math.cos(t * freq);
      }
    }
    positionCache.set(key, code);
  }
  return code;
}

/** Adds the fixed sinusoidal position code; no weights. */
export class SinusoidalPosition extends tf.layers.Layer {
  static className = 'SinusoidalPosition';

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return oneShape(inputShape);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => addPositions(one(inputs)));
  }
}

/** Multi-head scaled dot-product self-attention on packed [q | k | v]; no weights. */
export class SelfAttention extends tf.layers.Layer {
  static className = 'SelfAttention';
  readonly heads: number;

  constructor(args: LayerArgs & { heads: number }) {
    super(args);
    this.heads = args.heads;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape).slice();
    const d3 = s[s.length - 1];
    s[s.length - 1] = d3 == null ? null : d3 / 3;
    return s;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => {
      const xIn = one(inputs);
      // Leading axes between the batch and the tokens are independent sequences.
      const lead = xIn.shape.slice(0, -2);
      const x = xIn.rank === 3 ? xIn : tf.reshape(xIn, [-1, ...xIn.shape.slice(-2)]);
      const [n, t, d3] = x.shape as [number, number, number];
      const d = d3 / 3;
      const h = this.heads;
      const dh = d / h;
      if (!Number.isInteger(dh)) throw new Error(`SelfAttention: width ${d} is not divisible by ${h} heads`);
      // [n, T, d] → [n, h, T, dh] for each of q, k, v (rank-4 transposes only).
      const heads = (part: tf.Tensor) => tf.transpose(tf.reshape(part, [n, t, h, dh]), [0, 2, 1, 3]) as tf.Tensor4D;
      const [q, k, v] = tf.split(x, 3, 2).map(heads) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
      const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
      const p = tf.softmax(scores, -1);
      const o = tf.matMul(p, v); // [n, h, T, dh]
      return tf.reshape(tf.transpose(o, [0, 2, 1, 3]), [...lead, t, d]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads };
  }
}

/** Selects token `index` of a sequence; no weights. */
export class TakeToken extends tf.layers.Layer {
  static className = 'TakeToken';
  readonly index: number;

  constructor(args: LayerArgs & { index?: number } = {}) {
    super(args);
    this.index = args.index ?? 0;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = oneShape(inputShape);
    return [...s.slice(0, -2), s[s.length - 1] ?? null];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    return tf.tidy(() => takeToken(one(inputs), this.index));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), index: this.index };
  }
}

tf.serialization.registerClass(ClassToken);
tf.serialization.registerClass(SinusoidalPosition);
tf.serialization.registerClass(SelfAttention);
tf.serialization.registerClass(TakeToken);
