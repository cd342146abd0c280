/**
 * The chunk loop shared by every public computation: validates a batch, sizes chunks to a memory
 * budget, runs each chunk through the fast path (or the generic path) inside `tf.tidy`, and hands
 * the consumer's tensors back as typed arrays. No tensor outlives a call.
 */
import * as tf from '@tensorflow/tfjs';
import { autodiffChunk } from './autodiff.js';
import { runChunk } from './backprop.js';
import type { Chunk } from './backprop.js';
import type { EngineModel } from './model.js';
import { defaultMemoryBudget } from './backend.js';
import { makePlan } from './plan.js';
import type { Plan, Subset } from './plan.js';
import { forwardFromFeatures, trunkSplit } from './trunk-split.js';

/** Options common to the J-based computations. */
export interface RunOptions {
  /** Parameters J is taken over: 'all' (default), 'head', or layer names. */
  subset?: Subset;
  /** Samples per chunk; default: as many as the memory budget allows, at most 32. */
  chunkSize?: number;
  /** Bound on the tensor memory of one chunk, in bytes (default 512 MiB). */
  memoryBudgetBytes?: number;
  /** 'auto' (default): fast path, with autodiff only for unknown layers; 'generic': autodiff for the whole model. */
  path?: 'auto' | 'generic';
  /** Called after each chunk with (samples done, samples in all). */
  onProgress?: (done: number, total: number) => void;
  /** Stops between chunks with an AbortError. */
  signal?: AbortSignal;
  /**
   * The samples are the subset's trunk features ([n, width] from `trunkFeatures`, trunk.ts), not
   * series: the forward pass starts at the subset. Same numbers as from the series.
   */
  fromTrunk?: { width: number };
}

/** How a result was computed. */
export interface RunInfo {
  /** 'fast': every layer on the fast path; 'generic': some or all through tfjs autodiff. */
  path: 'fast' | 'generic';
  /** Layers computed through autodiff (all of them when `path: 'generic'` was asked). */
  genericLayers: string[];
  /** Layers whose weights J covers. */
  subset: string[];
  /** Columns of J (parameters in the subset). */
  parameters: number;
  chunkSize: number;
  /** Milliseconds in the backward passes (J), in reducing blocks (K, products) and in all. */
  timings: { jacobianMs: number; reduceMs: number; totalMs: number };
}

/** A batch as the engine takes it: x [n, length, channels] sample-major float32 (or [n, width] trunk features with `fromTrunk`). */
export function sampleCount(m: EngineModel, x: Float32Array, opts: Pick<RunOptions, 'fromTrunk'> = {}): number {
  const [length, channels] = m.inputShape;
  const per = opts.fromTrunk?.width ?? length * channels;
  if (!(x instanceof Float32Array)) throw new Error('samples must be a Float32Array');
  if (!(per > 0) || x.length % per !== 0) {
    throw new Error(opts.fromTrunk ? `trunk features: ${x.length} floats is not a whole number of rows of ${per}` : `samples: ${x.length} floats is not a whole number of [${length}, ${channels}] series`);
  }
  return x.length / per;
}

/**
 * J and the logits of samples [start, start + n) of x (series, or trunk features with
 * `fromTrunk`) through the fast path or the generic one. Call inside tf.tidy.
 */
export function chunkOf(m: EngineModel, plan: Plan, x: Float32Array, start: number, n: number, opts: RunOptions, loop: boolean): Chunk {
  if (opts.fromTrunk !== undefined) {
    const split = trunkSplit(plan);
    if (opts.path === 'generic') throw new Error("trunk features run on the fast path only (path: 'generic' starts from the series)");
    if (split.width !== opts.fromTrunk.width) throw new Error(`trunk features of width ${opts.fromTrunk.width}; this subset's trunk gives ${split.width}`);
    return runChunk(plan, null, loop, forwardFromFeatures(plan, split, x, start, n));
  }
  const [length, channels] = m.inputShape;
  const per = length * channels;
  const xs = tf.tensor3d(x.subarray(start * per, (start + n) * per), [n, length, channels]);
  return opts.path === 'generic' ? autodiffChunk(plan, xs) : runChunk(plan, xs, loop);
}

/** Rough upper bound of the tensor bytes one sample needs in one chunk of the fast path. */
export function bytesPerSample(plan: Plan): number {
  const V = plan.graph.classes;
  let activations = 0;
  let widest = 0;
  for (const op of plan.graph.ops) {
    const size = op.shape.reduce((a, b) => a * b, 1);
    activations += 2 * size;
    if (plan.needSignal[op.id]) widest = Math.max(widest, size);
    if (op.kind === 'attention') {
      // One T×T score matrix per head and sequence (Mantis: one sequence per channel).
      const t = op.shape[op.shape.length - 2] as number;
      const seqs = op.shape.slice(0, -2).reduce((a, b) => a * b, 1);
      activations += 4 * seqs * op.heads * t * t;
      widest = Math.max(widest, 2 * seqs * op.heads * t * t);
    }
  }
  return 4 * (activations + 5 * V * widest + 3 * V * plan.width);
}

export function chunkSizeFor(plan: Plan, opts: RunOptions, n: number): number {
  if (opts.chunkSize !== undefined) {
    if (!Number.isInteger(opts.chunkSize) || opts.chunkSize < 1) throw new Error('chunkSize must be a positive integer');
    return Math.min(opts.chunkSize, Math.max(n, 1));
  }
  const budget = opts.memoryBudgetBytes ?? defaultMemoryBudget();
  return Math.max(1, Math.min(32, n, Math.floor(budget / bytesPerSample(plan))));
}

/** Wasm runs dense products on XNNPACK only for plain 2D matMul; loop per sample there. */
export function loopMatMul(): boolean {
  return tf.getBackend() === 'wasm';
}

export function planFor(m: EngineModel, opts: RunOptions): Plan {
  return makePlan(m.graph, opts.subset ?? 'all');
}

export function infoOf(plan: Plan, opts: RunOptions, chunkSize: number, t: RunInfo['timings']): RunInfo {
  const generic = opts.path === 'generic';
  return {
    path: generic || plan.generic.length > 0 ? 'generic' : 'fast',
    genericLayers: generic ? plan.layers : plan.generic,
    subset: plan.layers,
    parameters: plan.width,
    chunkSize,
    timings: t,
  };
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The values of tensors as float32 arrays, then the tensors disposed (also on failure). `data()`,
 * not `dataSync()`: tfjs-backend-webgpu reads GPU buffers only asynchronously in Node.
 */
export async function readAll(ts: tf.Tensor[]): Promise<Float32Array[]> {
  try {
    return (await Promise.all(ts.map((t) => t.data()))) as Float32Array[];
  } finally {
    tf.dispose(ts);
  }
}

/**
 * Runs `reduce` on every chunk of x. `reduce` runs inside `tf.tidy` and returns the tensors to
 * read back; `sink` receives them as typed arrays with the chunk's first sample index.
 */
export async function forEachChunk(
  m: EngineModel,
  plan: Plan,
  x: Float32Array,
  opts: RunOptions,
  reduce: (chunk: Chunk, n: number) => tf.Tensor[],
  sink: (values: Float32Array[], start: number, n: number) => void,
  timings: RunInfo['timings'],
): Promise<number> {
  const total = sampleCount(m, x, opts);
  const chunkSize = chunkSizeFor(plan, opts, total);
  const loop = loopMatMul();
  const t0 = performance.now();
  for (let start = 0; start < total; start += chunkSize) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
    const n = Math.min(chunkSize, total - start);
    const out = tf.tidy(() => {
      const t1 = performance.now();
      const chunk = chunkOf(m, plan, x, start, n, opts, loop);
      const t2 = performance.now();
      const r = reduce(chunk, n);
      timings.jacobianMs += t2 - t1;
      timings.reduceMs += performance.now() - t2;
      return r;
    });
    // Read back asynchronously: a GPU backend (WebGPU) cannot read a tensor synchronously in Node.
    const values = await readAll(out);
    sink(values, start, n);
    opts.onProgress?.(start + n, total);
    await nextTick();
  }
  timings.totalMs += performance.now() - t0;
  return chunkSize;
}
