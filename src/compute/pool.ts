/**
 * A pool of compute threads. The wasm backend runs on one core (its own threads need a blob: URL
 * worker, which Node lacks), so the engine spreads a batch over worker threads, each with its own
 * tfjs, backend and copy of the model; tensor work then also stays off the caller's event loop.
 * With tfjs-node (which threads inside TensorFlow) or a GPU, one thread is right.
 *
 * Per-sample terms are split into tasks of whole chunks handed to whichever thread is free;
 * cross kernels split x_o into one range per thread (each thread computes J(x_u) once).
 */
import os from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startWorkerThread } from './worker-thread.js';
import type { BackendInfo, BackendLog, BackendPreference } from './backend.js';
import type { ModelSource, StoredWeights } from './checkpoint.js';
import type { RunInfo, RunOptions } from './engine.js';
import { firstOrderFromKernel } from './first-order.js';
import type { FirstOrderInput, FirstOrderResult } from './first-order.js';
import type { CrossKernelOptions, CrossKernelResult } from './cross.js';
import type { ParamInfo, ProjectionReport, SelfKernelResult } from './kernel.js';
import type { SubsetInfo } from './plan.js';
import type { SampleTerms } from './predict.js';
import type { ProjectionOptions } from './projection.js';
import { outputTerms } from './terms.js';
import type { OutputTerms } from './terms.js';
import type { TrunkFeatures } from './trunk.js';
import type { Request, Response } from './worker.js';

export interface PoolOptions {
  /** Worker threads (default: the number of CPU cores; 1 when the backend is tensorflow or webgpu). */
  threads?: number;
  /** Backend for every thread (default 'auto'). */
  backend?: BackendPreference;
  /** Receives the threads, the backend and why others were skipped, as one structured report (default: nothing is logged). */
  log?: BackendLog;
}

/** A model loaded in every thread of a pool. */
export interface PoolModel {
  readonly key: number;
  readonly classes: number;
  readonly inputShape: [number, number];
  readonly parameterCount: number;
  readonly generic: ReadonlyArray<{ layer: string; reason: string }>;
  /** The parameter subsets the model answers to by name ('all', 'head', its own), with layers and sizes. */
  readonly subsets: ReadonlyArray<SubsetInfo>;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type RequestBody = Request extends infer R ? (R extends unknown ? Omit<R, 'id'> : never) : never;

class Thread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  busy = false;

  constructor() {
    this.worker = startWorkerThread(import.meta.url, './worker.js');
    this.worker.on('message', (r: Response) => {
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(Object.assign(new Error(r.message), { stack: r.stack }));
    });
    this.worker.on('error', (err) => this.failAll(err));
    this.worker.on('exit', (code) => this.failAll(new Error(`compute thread exited with code ${code}`)));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  call<T>(req: RequestBody, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** Options without what cannot cross a thread boundary. */
function portable(opts: RunOptions): Record<string, unknown> {
  const { onProgress: _p, signal: _s, ...rest } = opts;
  return rest;
}

function mergeTimings(infos: RunInfo[], wallMs: number): RunInfo {
  const first = infos[0] as RunInfo;
  return {
    ...first,
    timings: {
      jacobianMs: infos.reduce((a, i) => a + i.timings.jacobianMs, 0),
      reduceMs: infos.reduce((a, i) => a + i.timings.reduceMs, 0),
      totalMs: wallMs,
    },
  };
}

function mergeProjection(parts: Array<{ report?: ProjectionReport; count: number }>): ProjectionReport | undefined {
  const withReport = parts.filter((p) => p.report !== undefined);
  const first = withReport[0]?.report;
  if (first === undefined) return undefined;
  const total = withReport.reduce((a, p) => a + p.count, 0);
  return {
    ...first,
    selfKRelError: {
      mean: withReport.reduce((a, p) => a + (p.report as ProjectionReport).selfKRelError.mean * p.count, 0) / Math.max(total, 1),
      max: Math.max(...withReport.map((p) => (p.report as ProjectionReport).selfKRelError.max)),
    },
  };
}

/**
 * Worker threads that each run the engine; the same computations as index.ts with a `PoolModel`
 * in place of an `EngineModel`. Create with `createPool`, `load` models into it, `close` it when
 * done. Calls may overlap; each thread works through its requests one at a time.
 */
export class ComputePool {
  private keys = 0;

  private constructor(
    private readonly pool: Thread[],
    /** The backend every thread runs (as the first thread reported it). */
    readonly backend: BackendInfo,
  ) {}

  /** Starts the threads and their backends. */
  static async create(opts: PoolOptions = {}): Promise<ComputePool> {
    const backend = opts.backend ?? 'auto';
    const pool = [new Thread()];
    try {
      // The first thread shows which backend 'auto' lands on: TensorFlow threads by itself (and a
      // GPU is one device), so without an explicit count it stays one thread.
      const info = await (pool[0] as Thread).call<BackendInfo>({ op: 'init', backend });
      // TensorFlow threads by itself, and a GPU takes one thread's work (each thread would hold its own device).
      const threads = Math.max(1, opts.threads ?? (info.name === 'tensorflow' || info.name === 'webgpu' ? 1 : os.availableParallelism()));
      while (pool.length < threads) pool.push(new Thread());
      await Promise.all(pool.slice(1).map((t) => t.call<BackendInfo>({ op: 'init', backend: info.name as BackendPreference })));
      opts.log?.({ backend: info.name, gpu: info.gpu, version: info.version, ...(info.adapter ? { adapter: info.adapter } : {}), threads, skipped: info.skipped });
      return new ComputePool(pool, info);
    } catch (err) {
      await Promise.all(pool.map((t) => t.terminate()));
      throw err;
    }
  }

  get threads(): number {
    return this.pool.length;
  }

  /** Loads a model (stored topology + weights, or a built-in architecture) into every thread. */
  async load(source: ModelSource): Promise<PoolModel> {
    const key = this.keys++;
    const infos = await Promise.all(this.pool.map((t) => t.call<Omit<PoolModel, 'key'>>({ op: 'load', key, source })));
    return { key, ...(infos[0] as Omit<PoolModel, 'key'>) };
  }

  /**
   * Loads another checkpoint's weights into a loaded model, in every thread; `partial`: only the
   * weights the specs name (the layers that differ), the others unchanged.
   */
  async loadWeights(model: PoolModel, weights: StoredWeights, opts: { partial?: boolean } = {}): Promise<void> {
    await Promise.all(this.pool.map((t) => t.call({ op: 'loadWeights', key: model.key, weights, partial: opts.partial === true })));
  }

  async unload(model: PoolModel): Promise<void> {
    await Promise.all(this.pool.map((t) => t.call({ op: 'unload', key: model.key })));
  }

  async close(): Promise<void> {
    await Promise.all(this.pool.map((t) => t.terminate()));
  }

  /**
   * Runs per-sample work in tasks of `task` samples on whichever thread is free; returns the
   * parts in sample order.
   */
  private async scatter<T>(n: number, task: number, opts: RunOptions, run: (t: Thread, start: number, count: number) => Promise<T>): Promise<Array<{ start: number; count: number; value: T }>> {
    const ranges: Array<{ start: number; count: number }> = [];
    for (let s = 0; s < n; s += task) ranges.push({ start: s, count: Math.min(task, n - s) });
    const out: Array<{ start: number; count: number; value: T }> = [];
    let next = 0;
    let done = 0;
    const worker = async (t: Thread) => {
      while (next < ranges.length) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new DOMException('aborted', 'AbortError');
        const r = ranges[next++] as { start: number; count: number };
        out.push({ ...r, value: await run(t, r.start, r.count) });
        done += r.count;
        opts.onProgress?.(done, n);
      }
    };
    await Promise.all(this.pool.map(worker));
    return out.sort((a, b) => a.start - b.start);
  }

  private taskSize(n: number, opts: RunOptions): number {
    // Whole chunks, at least two tasks per thread for balance.
    const chunk = opts.chunkSize ?? 16;
    return Math.max(chunk, Math.ceil(n / this.pool.length / 2 / chunk) * chunk);
  }

  /** Floats per sample: a series, or a row of trunk features with `fromTrunk`. */
  private per(model: PoolModel, opts: RunOptions = {}): number {
    return opts.fromTrunk?.width ?? model.inputShape[0] * model.inputShape[1];
  }

  /**
   * `trunkFeatures` of trunk.ts across the pool, in the same tasks as `selfKernel` (so each
   * sample's features come from the chunk its terms would have come from).
   */
  async trunkFeatures(model: PoolModel, x: Float32Array, opts: RunOptions = {}): Promise<TrunkFeatures> {
    const per = this.per(model);
    const n = x.length / per;
    if (!Number.isInteger(n)) throw new Error(`samples: ${x.length} floats is not a whole number of [${model.inputShape.join(', ')}] series`);
    const t0 = performance.now();
    const { fromTrunk: _f, ...rest } = opts;
    const parts = await this.scatter(n, this.taskSize(n, rest), rest, (t, start, count) =>
      t.call<TrunkFeatures>({ op: 'trunkFeatures', key: model.key, x: x.slice(start * per, (start + count) * per), opts: portable(rest) }),
    );
    const first = parts[0]?.value;
    if (first === undefined) return { n: 0, width: 0, features: new Float32Array(0), saves: false, subset: [], timings: { totalMs: 0 } };
    const features = new Float32Array(first.saves ? n * first.width : 0);
    if (first.saves) for (const p of parts) features.set(p.value.features, p.start * first.width);
    return { n, width: first.width, features, saves: first.saves, subset: first.subset, timings: { totalMs: performance.now() - t0 } };
  }

  /** `logitsFromTrunk` of trunk.ts across the pool: logits [n, V] from trunk features [n, width]. */
  async logitsFromTrunk(model: PoolModel, features: Float32Array, opts: Pick<RunOptions, 'subset'> & { width: number }): Promise<Float32Array> {
    const n = features.length / opts.width;
    if (!Number.isInteger(n)) throw new Error(`trunk features: ${features.length} floats is not a whole number of rows of ${opts.width}`);
    const task = Math.max(64, Math.ceil(n / this.pool.length));
    const parts = await this.scatter(n, task, {}, (t, start, count) =>
      t.call<{ logits: Float32Array }>({ op: 'logitsFromTrunk', key: model.key, x: features.slice(start * opts.width, (start + count) * opts.width), opts: { subset: opts.subset, width: opts.width } }),
    );
    const logits = new Float32Array(n * model.classes);
    for (const p of parts) logits.set(p.value.logits, p.start * model.classes);
    return logits;
  }

  /** `logitsOf` of index.ts across the pool: logits [n, V] from the forward pass only. */
  async logitsOf(model: PoolModel, x: Float32Array, opts: RunOptions = {}): Promise<Float32Array> {
    const per = this.per(model);
    const n = x.length / per;
    if (!Number.isInteger(n)) throw new Error(`samples: ${x.length} floats is not a whole number of [${model.inputShape.join(', ')}] series`);
    const task = Math.max(64, Math.ceil(n / this.pool.length));
    const parts = await this.scatter(n, task, opts, (t, start, count) =>
      t.call<{ logits: Float32Array }>({ op: 'logits', key: model.key, x: x.slice(start * per, (start + count) * per) }),
    );
    const logits = new Float32Array(n * model.classes);
    for (const p of parts) logits.set(p.value.logits, p.start * model.classes);
    return logits;
  }

  /** `outputs` of index.ts across the pool: the logit-only terms, from the forward pass only. */
  async outputs(model: PoolModel, x: Float32Array, labels?: ArrayLike<number>, opts: RunOptions & { matrices?: boolean } = {}): Promise<OutputTerms> {
    return outputTerms(await this.logitsOf(model, x, opts), model.classes, labels, opts.matrices ?? false);
  }

  /** `selfKernel` of index.ts across the pool. */
  async selfKernel(model: PoolModel, x: Float32Array, opts: RunOptions & { returnK?: boolean } = {}): Promise<SelfKernelResult> {
    const per = this.per(model, opts);
    const n = x.length / per;
    if (!Number.isInteger(n)) throw new Error(`samples: ${x.length} floats is not a whole number of ${opts.fromTrunk ? `rows of ${per} trunk features` : `[${model.inputShape.join(', ')}] series`}`);
    const t0 = performance.now();
    const parts = await this.scatter(n, this.taskSize(n, opts), opts, (t, start, count) =>
      t.call<SelfKernelResult>({ op: 'selfKernel', key: model.key, x: x.slice(start * per, (start + count) * per), opts: portable(opts) }),
    );
    const V = model.classes;
    const logits = new Float32Array(n * V);
    const K = opts.returnK === false ? undefined : new Float32Array(n * V * V);
    const kNorm = new Float32Array(n);
    const kTrace = new Float32Array(n);
    for (const p of parts) {
      logits.set(p.value.logits, p.start * V);
      if (p.value.K !== undefined) K?.set(p.value.K, p.start * V * V);
      kNorm.set(p.value.kNorm, p.start);
      kTrace.set(p.value.kTrace, p.start);
    }
    const info = parts.length > 0 ? mergeTimings(parts.map((p) => p.value.info), performance.now() - t0) : emptyInfo();
    return { n, V, logits, K, kNorm, kTrace, info };
  }

  /** `computeTerms` of index.ts across the pool. */
  async computeTerms(model: PoolModel, x: Float32Array, labels?: ArrayLike<number>, opts: RunOptions & { matrices?: boolean; returnK?: boolean } = {}): Promise<SampleTerms> {
    const k = await this.selfKernel(model, x, { ...opts, returnK: opts.returnK ?? false });
    const terms = outputTerms(k.logits, model.classes, labels, opts.matrices ?? false);
    return { ...terms, kNorm: k.kNorm, kTrace: k.kTrace, K: k.K, info: k.info };
  }

  /** `jacobian` of index.ts across the pool. */
  async jacobian(model: PoolModel, x: Float32Array, opts: RunOptions = {}): Promise<{ J: Float32Array; logits: Float32Array; params: ParamInfo[]; info: RunInfo }> {
    const per = this.per(model, opts);
    const n = x.length / per;
    const t0 = performance.now();
    const parts = await this.scatter(n, this.taskSize(n, opts), opts, (t, start, count) =>
      t.call<{ J: Float32Array; logits: Float32Array; params: ParamInfo[]; info: RunInfo }>({ op: 'jacobian', key: model.key, x: x.slice(start * per, (start + count) * per), opts: portable(opts) }),
    );
    const first = parts[0]?.value;
    if (first === undefined) return { J: new Float32Array(0), logits: new Float32Array(0), params: [], info: emptyInfo() };
    const V = model.classes;
    const width = first.J.length / parts[0]!.count / V;
    const J = new Float32Array(n * V * width);
    const logits = new Float32Array(n * V);
    for (const p of parts) {
      J.set(p.value.J, p.start * V * width);
      logits.set(p.value.logits, p.start * V);
    }
    return { J, logits, params: first.params, info: mergeTimings(parts.map((p) => p.value.info), performance.now() - t0) };
  }

  /** `projectedJacobian` of index.ts across the pool (every thread builds the same seeded sketch). */
  async projectedJacobian(model: PoolModel, x: Float32Array, opts: RunOptions & { projection: ProjectionOptions }): Promise<{ J: Float32Array; projection: ProjectionReport; info: RunInfo }> {
    const per = this.per(model, opts);
    const n = x.length / per;
    const t0 = performance.now();
    const parts = await this.scatter(n, this.taskSize(n, opts), opts, (t, start, count) =>
      t.call<{ J: Float32Array; projection: ProjectionReport; info: RunInfo }>({ op: 'projectedJacobian', key: model.key, x: x.slice(start * per, (start + count) * per), opts: portable(opts) }),
    );
    const d = opts.projection.dim;
    const J = new Float32Array(n * model.classes * d);
    for (const p of parts) J.set(p.value.J, p.start * model.classes * d);
    return {
      J,
      projection: mergeProjection(parts.map((p) => ({ report: p.value.projection, count: p.count }))) as ProjectionReport,
      info: mergeTimings(parts.map((p) => p.value.info), performance.now() - t0),
    };
  }

  /** `crossKernel` of index.ts across the pool: one range of x_o per thread. */
  async crossKernel(model: PoolModel, xo: Float32Array, xu: Float32Array, opts: CrossKernelOptions = {}): Promise<CrossKernelResult> {
    const per = this.per(model, opts);
    const no = xo.length / per;
    const nu = xu.length / per;
    const V = model.classes;
    const t0 = performance.now();
    const task = Math.max(1, Math.ceil(no / this.pool.length));
    const parts = await this.scatter(no, task, opts, (t, start, count) =>
      t.call<CrossKernelResult>({ op: 'crossKernel', key: model.key, xo: xo.slice(start * per, (start + count) * per), xu, opts: portable(opts) }),
    );
    const K = opts.returnK === false ? undefined : new Float32Array(no * nu * V * V);
    const kCross = new Float32Array(nu);
    const logitsO = new Float32Array(no * V);
    for (const p of parts) {
      if (p.value.K !== undefined) K?.set(p.value.K, p.start * nu * V * V);
      logitsO.set(p.value.logitsO, p.start * V);
      p.value.kCross.forEach((v, u) => (kCross[u] = (kCross[u] as number) + (v * p.count) / no));
    }
    const projection = mergeProjection(parts.map((p) => ({ report: p.value.projection, count: p.count + nu })));
    return {
      no,
      nu,
      V,
      K,
      kCross,
      logitsO,
      logitsU: parts[0]?.value.logitsU ?? new Float32Array(0),
      projection,
      info: parts.length > 0 ? mergeTimings(parts.map((p) => p.value.info), performance.now() - t0) : emptyInfo(),
    };
  }

  /** `kCross` of index.ts across the pool. */
  async kCross(model: PoolModel, xu: Float32Array, target: Float32Array, opts: CrossKernelOptions = {}): Promise<{ kCross: Float32Array; projection?: ProjectionReport; info: RunInfo }> {
    const r = await this.crossKernel(model, target, xu, { ...opts, returnK: false });
    return { kCross: r.kCross, projection: r.projection, info: r.info };
  }

  /** `firstOrder` of index.ts across the pool. */
  async firstOrder(model: PoolModel, input: FirstOrderInput, opts: Omit<CrossKernelOptions, 'returnK'> = {}): Promise<FirstOrderResult> {
    const cross = await this.crossKernel(model, input.xo, input.xu, { ...opts, returnK: true });
    return firstOrderFromKernel(cross, input);
  }
}

function emptyInfo(): RunInfo {
  return { path: 'fast', genericLayers: [], subset: [], parameters: 0, chunkSize: 0, timings: { jacobianMs: 0, reduceMs: 0, totalMs: 0 } };
}

/** Starts a pool of compute threads (see `ComputePool`). */
export function createPool(opts: PoolOptions = {}): Promise<ComputePool> {
  return ComputePool.create(opts);
}
