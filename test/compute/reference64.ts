/**
 * An independent float64 forward pass in plain JavaScript for small tfjs layers models, written
 * from the layers' definitions (not from the engine), and J by central finite differences on it.
 * With float64 and h = 1e-5 the differences are accurate to ~1e-9, so the float32 engine can be
 * held to a tight tolerance instead of a loose float32 finite difference.
 */
import type * as tf from '@tensorflow/tfjs';

interface T64 {
  shape: number[];
  data: Float64Array;
}

const t64 = (shape: number[], data?: Float64Array): T64 => ({ shape, data: data ?? new Float64Array(shape.reduce((a, b) => a * b, 1)) });

/** erf in float64: the all-positive series 2/√π e^{−x²} Σ 2ⁿx^{2n+1}/(2n+1)!!, exact to ~1e-15 for |x| ≤ 6. */
export function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; n < 200; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum;
}

function act(name: string, v: number): number {
  switch (name) {
    case 'linear':
      return v;
    case 'relu':
      return Math.max(v, 0);
    case 'tanh':
      return Math.tanh(v);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'gelu':
      return 0.5 * v * (1 + erf64(v / Math.SQRT2));
    case 'elu':
      return v > 0 ? v : Math.exp(v) - 1;
    case 'softplus':
      return Math.log1p(Math.exp(v));
    case 'swish':
      return v / (1 + Math.exp(-v));
    default:
      throw new Error(`reference64: activation ${name}`);
  }
}

function mapAct(x: T64, name: string): T64 {
  return t64(x.shape, x.data.map((v) => act(name, v)));
}

/** Dense on the last axis: x [..., din], w [din, dout]. */
function dense(x: T64, w: Float64Array, b: Float64Array | null, dout: number): T64 {
  const din = x.shape[x.shape.length - 1] as number;
  const rows = x.data.length / din;
  const out = t64([...x.shape.slice(0, -1), dout]);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < dout; o++) {
      let s = b === null ? 0 : (b[o] as number);
      for (let i = 0; i < din; i++) s += (x.data[r * din + i] as number) * (w[i * dout + o] as number);
      out.data[r * dout + o] = s;
    }
  }
  return out;
}

function conv1d(x: T64, w: Float64Array, b: Float64Array | null, k: number, cout: number, stride: number, padding: string): T64 {
  const [tIn, cin] = x.shape as [number, number];
  let before = 0;
  let tOut: number;
  if (padding === 'same') {
    tOut = Math.ceil(tIn / stride);
    const total = Math.max((tOut - 1) * stride + k - tIn, 0);
    before = Math.floor(total / 2);
  } else {
    tOut = Math.floor((tIn - k) / stride) + 1;
  }
  const out = t64([tOut, cout]);
  for (let t = 0; t < tOut; t++) {
    for (let o = 0; o < cout; o++) {
      let s = b === null ? 0 : (b[o] as number);
      for (let j = 0; j < k; j++) {
        const u = t * stride + j - before;
        if (u < 0 || u >= tIn) continue;
        for (let c = 0; c < cin; c++) s += (x.data[u * cin + c] as number) * (w[(j * cin + c) * cout + o] as number);
      }
      out.data[t * cout + o] = s;
    }
  }
  return out;
}

function pool(x: T64, size: number, mode: 'max' | 'avg'): T64 {
  const [t, c] = x.shape as [number, number];
  const tOut = Math.floor(t / size);
  const out = t64([tOut, c]);
  for (let i = 0; i < tOut; i++) {
    for (let ch = 0; ch < c; ch++) {
      let v = mode === 'max' ? -Infinity : 0;
      for (let j = 0; j < size; j++) {
        const a = x.data[(i * size + j) * c + ch] as number;
        v = mode === 'max' ? Math.max(v, a) : v + a / size;
      }
      out.data[i * c + ch] = v;
    }
  }
  return out;
}

function layerNorm(x: T64, g: Float64Array | null, b: Float64Array | null, eps: number): T64 {
  const d = x.shape[x.shape.length - 1] as number;
  const out = t64(x.shape);
  for (let r = 0; r < x.data.length / d; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x.data[r * d + i] as number;
    mean /= d;
    let v = 0;
    for (let i = 0; i < d; i++) v += ((x.data[r * d + i] as number) - mean) ** 2;
    v /= d;
    for (let i = 0; i < d; i++) {
      const xh = ((x.data[r * d + i] as number) - mean) / Math.sqrt(v + eps);
      out.data[r * d + i] = xh * (g === null ? 1 : (g[i] as number)) + (b === null ? 0 : (b[i] as number));
    }
  }
  return out;
}

function attention(x: T64, heads: number): T64 {
  const [t, d3] = x.shape as [number, number];
  const d = d3 / 3;
  const dh = d / heads;
  const out = t64([t, d]);
  const at = (row: number, part: number, h: number, i: number) => x.data[row * d3 + part * d + h * dh + i] as number;
  for (let h = 0; h < heads; h++) {
    for (let q = 0; q < t; q++) {
      const s = new Float64Array(t);
      let max = -Infinity;
      for (let k = 0; k < t; k++) {
        let dot = 0;
        for (let i = 0; i < dh; i++) dot += at(q, 0, h, i) * at(k, 1, h, i);
        s[k] = dot / Math.sqrt(dh);
        max = Math.max(max, s[k] as number);
      }
      let z = 0;
      for (let k = 0; k < t; k++) {
        s[k] = Math.exp((s[k] as number) - max);
        z += s[k] as number;
      }
      for (let i = 0; i < dh; i++) {
        let o = 0;
        for (let k = 0; k < t; k++) o += ((s[k] as number) / z) * at(k, 2, h, i);
        out.data[q * d + h * dh + i] = o;
      }
    }
  }
  return out;
}

function sinusoid(t: number, d: number): Float64Array {
  const code = new Float64Array(t * d);
  for (let p = 0; p < t; p++) {
    for (let i = 0; i < d; i++) {
      const freq = Math.pow(10000, -(2 * Math.floor(i / 2)) / d);
      // The layer adds a float32 code; round it the same way.
      code[p * d + i] = Math.fround(i % 2 === 0 ? Math.sin(p * freq) : Math.cos(p * freq));
    }
  }
  return code;
}

type Layer = tf.layers.Layer & { inboundNodes: Array<{ inboundLayers: tf.layers.Layer[] }> };

export interface Reference64 {
  /** θ in `model.trainableWeights` order, flattened row-major (J's column order). */
  theta: Float64Array;
  /** Logits (pre-softmax) of one sample x [length · channels] at parameters θ. */
  logits(theta: Float64Array, x: Float64Array): Float64Array;
  /** J = ∂z/∂θ by central differences, [V, P]. */
  jacobian(x: Float64Array, h?: number): Float64Array;
}

/** Reads the weights with `data()` (a GPU backend reads asynchronously only), then works in float64. */
export async function reference64(model: tf.LayersModel): Promise<Reference64> {
  const trainable = model.trainableWeights;
  const offsets = new Map<string, [number, number]>();
  let P = 0;
  for (const w of trainable) {
    const size = w.shape.reduce((a: number, b) => a * (b as number), 1);
    offsets.set(w.originalName, [P, size]);
    P += size;
  }
  const theta = new Float64Array(P);
  const constants = new Map<string, Float64Array>();
  for (const w of model.weights) {
    const v = Float64Array.from(await w.read().data());
    const o = offsets.get(w.originalName);
    if (o !== undefined) theta.set(v, o[0]);
    else constants.set(w.originalName, v);
  }
  const layers = model.layers as Layer[];
  const outputLayer = layers[layers.length - 1] as Layer;
  const [length, channels] = (model.inputs[0]?.shape ?? []).slice(1) as [number, number];

  const logits = (th: Float64Array, x: Float64Array): Float64Array => {
    const weight = (layer: tf.layers.Layer, suffix: string): Float64Array | null => {
      const w = layer.weights.find((v) => v.originalName.endsWith(`/${suffix}`));
      if (w === undefined) return null;
      const o = offsets.get(w.originalName);
      return o !== undefined ? th.subarray(o[0], o[0] + o[1]) : (constants.get(w.originalName) as Float64Array);
    };
    const values = new Map<string, T64>();
    for (const layer of layers) {
      const cls = layer.getClassName();
      const cfg = layer.getConfig() as Record<string, unknown>;
      const ins = cls === 'InputLayer' ? [] : (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => values.get(l.name) as T64);
      const x0 = ins[0] as T64;
      const activation = (cfg['activation'] as string | undefined) ?? 'linear';
      const finalSoftmax = layer === outputLayer && activation === 'softmax';
      let y: T64;
      switch (cls) {
        case 'InputLayer':
          y = t64([length, channels], Float64Array.from(x));
          break;
        case 'Dense': {
          const w = weight(layer, 'kernel') as Float64Array;
          y = dense(x0, w, weight(layer, 'bias'), cfg['units'] as number);
          if (!finalSoftmax) y = mapAct(y, activation);
          break;
        }
        case 'Conv1D': {
          const k = (cfg['kernelSize'] as number[])[0] as number;
          const stride = (cfg['strides'] as number[])[0] as number;
          y = mapAct(conv1d(x0, weight(layer, 'kernel') as Float64Array, weight(layer, 'bias'), k, cfg['filters'] as number, stride, cfg['padding'] as string), activation);
          break;
        }
        case 'MaxPooling1D':
        case 'AveragePooling1D':
          y = pool(x0, (cfg['poolSize'] as number[])[0] as number, cls === 'MaxPooling1D' ? 'max' : 'avg');
          break;
        case 'GlobalAveragePooling1D':
        case 'GlobalMaxPooling1D': {
          const [t, c] = x0.shape as [number, number];
          y = pool(x0, t, cls === 'GlobalMaxPooling1D' ? 'max' : 'avg');
          y = t64([c], y.data);
          break;
        }
        case 'Flatten':
          y = t64([x0.data.length], x0.data);
          break;
        case 'LayerNormalization':
          y = layerNorm(x0, weight(layer, 'gamma'), weight(layer, 'beta'), cfg['epsilon'] as number);
          break;
        case 'BatchNormalization': {
          const mu = weight(layer, 'moving_mean') as Float64Array;
          const v = weight(layer, 'moving_variance') as Float64Array;
          const g = weight(layer, 'gamma');
          const b = weight(layer, 'beta');
          const c = x0.shape[x0.shape.length - 1] as number;
          const eps = cfg['epsilon'] as number;
          y = t64(x0.shape, x0.data.map((val, i) => {
            const ch = i % c;
            return ((val - (mu[ch] as number)) / Math.sqrt((v[ch] as number) + eps)) * (g === null ? 1 : (g[ch] as number)) + (b === null ? 0 : (b[ch] as number));
          }));
          break;
        }
        case 'Activation':
          y = finalSoftmax ? x0 : mapAct(x0, activation);
          break;
        case 'Dropout':
          y = x0;
          break;
        case 'Add':
          y = t64(x0.shape, x0.data.map((v, i) => ins.reduce((s, t) => s + (t.data[i] as number), 0)));
          break;
        case 'Concatenate': {
          const rows = x0.data.length / (x0.shape[x0.shape.length - 1] as number);
          const widths = ins.map((t) => t.shape[t.shape.length - 1] as number);
          const total = widths.reduce((a, b) => a + b, 0);
          y = t64([...x0.shape.slice(0, -1), total]);
          for (let r = 0; r < rows; r++) {
            let o = 0;
            ins.forEach((t, i) => {
              const w = widths[i] as number;
              y.data.set(t.data.subarray(r * w, (r + 1) * w), r * total + o);
              o += w;
            });
          }
          break;
        }
        case 'ClassToken': {
          const [t, d] = x0.shape as [number, number];
          y = t64([t + 1, d]);
          y.data.set(weight(layer, 'token') as Float64Array, 0);
          y.data.set(x0.data, d);
          break;
        }
        case 'SinusoidalPosition': {
          const [t, d] = x0.shape as [number, number];
          const code = sinusoid(t, d);
          y = t64(x0.shape, x0.data.map((v, i) => v + (code[i] as number)));
          break;
        }
        case 'SelfAttention':
          y = attention(x0, cfg['heads'] as number);
          break;
        case 'TakeToken': {
          const d = x0.shape[1] as number;
          const i = cfg['index'] as number;
          y = t64([d], x0.data.slice(i * d, (i + 1) * d));
          break;
        }
        default:
          throw new Error(`reference64: layer class ${cls}`);
      }
      values.set(layer.name, y);
    }
    return (values.get(outputLayer.name) as T64).data;
  };

  const jacobian = (x: Float64Array, h = 1e-5): Float64Array => {
    const V = logits(theta, x).length;
    const J = new Float64Array(V * P);
    const th = Float64Array.from(theta);
    for (let p = 0; p < P; p++) {
      const keep = th[p] as number;
      th[p] = keep + h;
      const up = logits(th, x);
      th[p] = keep - h;
      const down = logits(th, x);
      th[p] = keep;
      for (let c = 0; c < V; c++) J[c * P + p] = ((up[c] as number) - (down[c] as number)) / (2 * h);
    }
    return J;
  };

  return { theta, logits, jacobian };
}
