import { LRUCache } from 'lru-cache';
import {
  ARCHITECTURES,
  createPool,
  firstOrderFromKernel,
  outputTerms,
  type ArchitectureName,
  type ComputePool,
  type ModelSource,
  type PoolModel,
  type Subset,
  type SubsetInfo,
} from '../../compute/index.js';
import type { Config } from '../../platform/config.js';
import type { CrossValue } from './cross-storage.js';
import { checkpointWeightIndex, checkpointWeights, nextCheckpointId, weightLayers, sampleSeries, selectionSeries, splitSeries, type SeriesRow } from './storage.js';
import { parseTargetKey } from '../curation/term-columns.js';
import type { Database } from '../../platform/db/database.js';
import { assembleWeights, layerOfWeight, layerSizesOf, loadCheckpointContext, type StoredWeightSpec } from '../checkpoints/service.js';
import { columnField, type CheckpointShape, type MetricColumns } from './metrics-storage.js';
import { ProducerIds, type ProducerKey, type ProducerRef } from './producers.js';
import { writeComputedTerms, writeCrossMetrics } from './write-terms.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, ModelUnusableError, invariant } from '../../platform/errors.js';
import { bytesToFloat32 } from '../../platform/float32.js';
import type { Logger } from '../../platform/logger.js';
import { VERSION } from '../../platform/version.js';
import { ModelCache, type FamilyModel, type ModelCacheStats } from './engine-models.js';
import { ComputeBudgets } from './budgets.js';
import { TrunkCache, type TrunkBatch, type TrunkCacheStats } from './trunk-cache.js';

/** A checkpoint with what computing at it needs: its model, its dataset's shape, its weights' size. */
export interface ComputeCheckpoint {
  id: number;
  runId: number;
  step: number;
  learningRate: number | null;
  datasetId: number;
  weightBytes: number;
  /** V: the model's classes. */
  numClasses: number;
  inputLength: number;
  channels: number;
  model: { id: number; format: 'TFJS_LAYERS' | 'BUILTIN'; architecture: string | null; config: unknown; topology: unknown };
}

/** A stored model with its shape: what loading it needs (a Model row has exactly these fields). */
export interface ComputeModel {
  id: number;
  format: 'TFJS_LAYERS' | 'BUILTIN';
  architecture: string | null;
  config: unknown;
  topology: unknown;
  inputLength: number;
  channels: number;
  numClasses: number;
}

/** What a computation runs over: K (and every kernel term) over this parameter subset (default 'all'). */
export interface ComputeOptions {
  signal?: AbortSignal;
  /** Checked against the model by the request path's checkSubset (src/modules/terms/subsets.ts). */
  subset?: ParameterSubset;
  /** Told how many of the batch's samples had their trunk activations from the frozen-trunk cache (trunk-cache.ts). */
  onTrunkHits?: (hits: number) => void;
}

/** Samples as the engine takes them: ids ascending, labels, and x [n, length, channels]. */
export interface SampleBatch {
  ids: number[];
  labels: Int32Array;
  x: Float32Array;
}

/** The tensor backend of the compute threads (serverInfo.backend). */
export interface BackendSummary {
  name: string;
  gpu: boolean;
  version: string;
  threads: number;
  /** The WebGPU adapter (webgpu only). */
  adapter: { vendor: string; architecture: string; device: string; description: string; software: boolean } | null;
}

/** What this process has computed since it started (serverInfo.compute): tests count calls with it. */
export interface ComputeStats {
  /** Calls into the compute threads (one per batch of samples, whatever its size). */
  calls: number;
  /** Samples those calls computed. */
  samples: number;
  models: ModelCacheStats;
  trunk: TrunkCacheStats;
}

export function checkpointShape(ckpt: ComputeCheckpoint): CheckpointShape {
  return { id: ckpt.id, datasetId: ckpt.datasetId, numClasses: ckpt.numClasses };
}

/** Target sets kept loaded for kCross (a job asks for the same one chunk after chunk). */
const TARGET_CACHE_ENTRIES = 2;
const TARGET_CACHE_MS = 60_000;
/** Bytes of sample series kept in memory (ComputeService.series). */
const SERIES_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * The compute side of on-demand terms in one process: a pool of compute threads (started on first
 * use, so a server that never computes never starts one), the checkpoint models loaded in them
 * (bounded by bytes), and the computations the API and the job worker ask for. Tensor work runs
 * only in the pool's threads, never on the event loop that serves requests.
 */
export class ComputeService {
  private poolStart: Promise<ComputePool> | null = null;
  private readonly models: ModelCache;
  private readonly counters = { calls: 0, samples: 0 };
  /** Inline computations under way, by `m:<checkpoint>:<subset>:<sample>` or `x:<checkpoint>:<subset>:<target>:<sample>`. */
  private readonly inflight = new Map<string, Promise<void>>();
  /** The parameter subsets of each model (they depend on its topology, not on a checkpoint's weights). */
  private readonly subsetsByModel = new Map<number, Promise<readonly SubsetInfo[]>>();
  private readonly targets = new Map<string, { at: number; x: Promise<SampleBatch> }>();
  /** The frozen-trunk cache (trunk-cache.ts): kernel terms over a subset start from the trunk's stored activations. */
  readonly trunk: TrunkCache;
  private closed = false;
  /** Producer ids of this database, for the life of this process's compute runtime. */
  private readonly producerIds: ProducerIds;
  /** The compute budgets' counters (src/modules/terms/compute-policy.ts): one per process. */
  readonly budgets: ComputeBudgets;
  /** (checkpoint, subset) pairs known to be valid (src/modules/terms/subsets.ts); a checkpoint's model never changes. */
  readonly knownSubsets = new Set<string>();
  /**
   * Recently read samples by `dataset:id`, bounded by bytes: an analysis asks for the same tracked
   * samples at checkpoint after checkpoint. Safe to keep because a sample never changes once stored
   * (it goes only with its dataset, and ids are not reused).
   */
  private readonly series = new LRUCache<string, SeriesRow>({ maxSize: SERIES_CACHE_BYTES, sizeCalculation: (row) => row.series.byteLength + 64 });
  /** The layer hashes of the weights each loaded model holds now, by pool key (absent: unknown, never swapped into). */
  private readonly heldLayers = new Map<number, Record<string, string>>();

  constructor(
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
  ) {
    this.producerIds = new ProducerIds(db);
    this.budgets = new ComputeBudgets(db);
    this.trunk = new TrunkCache(db, config.compute.trunkCacheBytes);
    this.models = new ModelCache(config.compute.modelCacheBytes, async (m) => {
      this.heldLayers.delete(m.key);
      await (await this.pool()).unload(m);
    });
  }

  /** The compute threads, started on first use. */
  pool(): Promise<ComputePool> {
    if (this.closed) return Promise.reject(new Error('the compute service is closed'));
    this.poolStart ??= createPool({ backend: this.config.backend, ...(this.config.compute.threads > 0 ? { threads: this.config.compute.threads } : {}) }).then(
      (pool) => {
        this.log.info({ backend: pool.backend.name, gpu: pool.backend.gpu, version: pool.backend.version, threads: pool.threads, ...(pool.backend.adapter ? { adapter: pool.backend.adapter } : {}), skipped: pool.backend.skipped }, 'compute backend');
        return pool;
      },
      (error: unknown) => {
        this.poolStart = null;
        throw error;
      },
    );
    return this.poolStart;
  }

  async backend(): Promise<BackendSummary> {
    const pool = await this.pool();
    const a = pool.backend.adapter;
    const adapter = a === undefined ? null : { vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description, software: a.software };
    return { name: pool.backend.name, gpu: pool.backend.gpu, version: pool.backend.version, threads: pool.threads, adapter };
  }

  stats(): ComputeStats {
    return { ...this.counters, models: this.models.stats(), trunk: this.trunk.stats() };
  }

  /** Who Tangent's values are marked as computed by: this backend and version. */
  async producer(): Promise<ProducerKey> {
    const pool = await this.pool();
    return { kind: 'SERVER', backend: pool.backend.name, version: `tangent ${VERSION}; ${pool.backend.version}` };
  }

  /**
   * This producer's row (ids cached for the life of this service: producers are never deleted), read
   * in its own statement: call it before opening a transaction that writes values, never inside one.
   */
  async producerRef(producer?: ProducerKey): Promise<ProducerRef> {
    return this.producerIds.ref(producer ?? (await this.producer()));
  }

  async close(): Promise<void> {
    this.closed = true;
    const start = this.poolStart;
    this.poolStart = null;
    if (start) await (await start.catch(() => null))?.close();
  }

  /** The checkpoint, its model and its dataset's shape; NOT_FOUND when it does not exist. */
  async checkpoint(id: number): Promise<ComputeCheckpoint> {
    const row = await loadCheckpointContext(this.db, id);
    const { inputLength, channels, numClasses, ...model } = row.model;
    const ckpt: ComputeCheckpoint = {
      id: row.id,
      runId: row.runId,
      step: row.step,
      learningRate: row.learningRate,
      datasetId: row.datasetId,
      weightBytes: row.weightBytes,
      numClasses,
      inputLength,
      channels,
      model,
    };
    if (row.datasetLength !== ckpt.inputLength || row.datasetChannels !== ckpt.channels) {
      throw new ModelUnusableError(id, `it takes series of ${ckpt.inputLength} × ${ckpt.channels} but its run's dataset holds ${row.datasetLength} × ${row.datasetChannels}`);
    }
    if (row.classNames.length > ckpt.numClasses) {
      throw new ModelUnusableError(id, `the dataset has ${row.classNames.length} classes but the model only ${ckpt.numClasses}`);
    }
    return ckpt;
  }

  /** The next checkpoint of the run (by step), if any. */
  async nextCheckpoint(ckpt: ComputeCheckpoint): Promise<number | null> {
    return nextCheckpointId(this.db, ckpt.runId, ckpt.step);
  }

  /** Samples of the dataset by id, in id order; BAD_USER_INPUT naming the first id that is not one of its samples. */
  async samples(ckpt: ComputeCheckpoint, ids: readonly number[], field = 'sampleIds'): Promise<SampleBatch> {
    const wanted = [...new Set(ids)].sort((a, b) => a - b);
    if (wanted.length === 0) return { ids: [], labels: new Int32Array(0), x: new Float32Array(0) };
    const key = (id: number) => `${ckpt.datasetId}:${id}`;
    const missing = wanted.filter((id) => !this.series.has(key(id)));
    if (missing.length > 0) for (const row of await sampleSeries(this.db, ckpt.datasetId, missing)) this.series.set(key(row.id), row);
    const rows = wanted.map((id) => this.series.get(key(id))).filter((r): r is SeriesRow => r !== undefined);
    if (rows.length !== wanted.length) {
      const found = new Set(rows.map((r) => r.id));
      const bad = wanted.find((id) => !found.has(id));
      throw new BadUserInputError(`Sample ${bad} is not a sample of checkpoint ${ckpt.id}'s dataset`, field);
    }
    return this.batchOf(ckpt, rows);
  }

  private batchOf(ckpt: ComputeCheckpoint, rows: readonly SeriesRow[]): SampleBatch {
    const per = ckpt.inputLength * ckpt.channels;
    const x = new Float32Array(rows.length * per);
    const labels = new Int32Array(rows.length);
    rows.forEach((row, i) => {
      const series = bytesToFloat32(row.series);
      invariant(series.length === per, `sample ${row.id} holds ${series.length} values, not ${per}`);
      x.set(series, i * per);
      labels[i] = row.label;
    });
    return { ids: rows.map((r) => r.id), labels, x };
  }

  /** The samples of a kCross target set T, in a fixed order (cached briefly: a job asks chunk after chunk). */
  private targetSeries(ckpt: ComputeCheckpoint, targetKey: string): Promise<SampleBatch> {
    const key = `${ckpt.datasetId}:${targetKey}`;
    const now = Date.now();
    const cached = this.targets.get(key);
    if (cached && now - cached.at < TARGET_CACHE_MS) return cached.x;
    const target = parseTargetKey(targetKey);
    const x = (async () => {
      const rows = target.kind === 'split' ? await splitSeries(this.db, ckpt.datasetId, target.split) : await selectionSeries(this.db, target.selectionId, ckpt.datasetId);
      if (rows.length === 0) throw new BadUserInputError(`The target set ${targetKey} has no samples in checkpoint ${ckpt.id}'s dataset`, 'target');
      return this.batchOf(ckpt, rows);
    })();
    this.targets.set(key, { at: now, x });
    x.catch(() => this.targets.get(key)?.x === x && this.targets.delete(key));
    while (this.targets.size > TARGET_CACHE_ENTRIES) this.targets.delete(this.targets.keys().next().value as string);
    return x;
  }

  /**
   * Runs `fn` with the checkpoint's model loaded in the pool (from the model cache). A checkpoint not
   * loaded is written into an idle model of another checkpoint of the same model when at most half of
   * its weight bytes differ (swap), and loaded anew otherwise.
   */
  private async withModel<T>(ckpt: ComputeCheckpoint, fn: (pool: ComputePool, model: PoolModel) => Promise<T>): Promise<T> {
    const pool = await this.pool();
    let swap: Swap | null = null;
    let index: Promise<WeightIndex | null> | undefined;
    return this.models.use(
      ckpt.id,
      ckpt.weightBytes * pool.threads,
      async (from) => {
        if (from && swap?.from === from.key) {
          const swapped = await this.swapWeights(pool, ckpt, from.model, swap).then(
            () => true,
            async (error: unknown) => {
              // Its weights are half written: the model goes, and the checkpoint is loaded anew.
              this.log.warn({ checkpointId: ckpt.id, err: firstLine(error) }, 'weight swap failed; loading the model anew');
              this.heldLayers.delete(from.model.key);
              await pool.unload(from.model).catch(() => undefined);
              return false;
            },
          );
          if (swapped) return from.model;
        } else if (from) {
          this.heldLayers.delete(from.model.key);
          await pool.unload(from.model).catch(() => undefined);
        }
        return this.loadModel(pool, ckpt);
      },
      (model) => fn(pool, model),
      {
        family: ckpt.model.id,
        choose: async (loaded) => {
          index ??= checkpointWeightIndex(this.db, ckpt.id);
          swap = this.chooseSwap(await index, loaded);
          return swap && loaded.find((m) => m.key === swap!.from)!;
        },
      },
    );
  }

  /** The loaded model whose weights differ least from the checkpoint's, when at most half of the bytes differ. */
  private chooseSwap(index: WeightIndex | null, loaded: readonly FamilyModel[]): Swap | null {
    // A checkpoint stored whole (before layers were shared) has no layer rows to read one by one.
    if (!index || index.inline || !index.layerHashes) return null;
    const sizes = layerSizesOf(index.specs);
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    // An idle model that will do is taken now; a busy one only when no idle one will (then the miss waits).
    let best: (Swap & { busy: boolean }) | null = null;
    for (const m of loaded) {
      const held = this.heldLayers.get(m.model.key);
      if (!held) continue;
      // The same model id means the same topology; the layers must still match one for one.
      if (Object.keys(held).length !== sizes.size || !Object.keys(held).every((layer) => sizes.has(layer))) continue;
      const changed = Object.keys(index.layerHashes).filter((layer) => held[layer] !== index.layerHashes![layer]);
      const bytes = changed.reduce((sum, layer) => sum + sizes.get(layer)!, 0);
      if (bytes * 2 > total) continue;
      const better = !best || (best.busy && !m.busy) || (best.busy === m.busy && bytes < best.bytes);
      if (better) best = { from: m.key, specs: index.specs, hashes: index.layerHashes, changed, bytes, busy: m.busy };
    }
    return best;
  }

  /** Writes the checkpoint's changed layers into a model that holds another checkpoint of the same model. */
  private async swapWeights(pool: ComputePool, ckpt: ComputeCheckpoint, model: PoolModel, swap: Swap): Promise<void> {
    this.heldLayers.delete(model.key);
    if (swap.changed.length > 0) {
      const changed = new Set(swap.changed);
      const specs = swap.specs.filter((s) => changed.has(layerOfWeight(s.name)));
      const byHash = await weightLayers(this.db, swap.changed.map((layer) => swap.hashes[layer]!));
      const layers = new Map(swap.changed.map((layer) => [layer, byHash.get(swap.hashes[layer]!)] as const).filter((e): e is [string, Uint8Array] => e[1] !== undefined));
      invariant(layers.size === changed.size, `checkpoint ${ckpt.id}: a changed layer is not stored`);
      const weightData = assembleWeights(specs, layers);
      await pool.loadWeights(model, { weightSpecs: specs as NonNullable<ModelSource['weightSpecs']>, weightData }, { partial: true });
    }
    this.heldLayers.set(model.key, swap.hashes);
  }

  private async loadModel(pool: ComputePool, ckpt: ComputeCheckpoint): Promise<PoolModel> {
    const weights = await checkpointWeights(this.db, ckpt.id);
    invariant(weights, `checkpoint ${ckpt.id} has no weights`);
    const model: ComputeModel = { ...ckpt.model, inputLength: ckpt.inputLength, channels: ckpt.channels, numClasses: ckpt.numClasses };
    const source = sourceOf(model, { weightSpecs: weights.specs as NonNullable<ModelSource['weightSpecs']>, weightData: weights.data }, (reason) => new ModelUnusableError(ckpt.id, reason));
    let loaded: PoolModel;
    try {
      loaded = await pool.load(source);
    } catch (error) {
      // The engine refuses the stored topology, config or weights: the data's problem, said plainly.
      throw new ModelUnusableError(ckpt.id, firstLine(error));
    }
    if (loaded.classes !== ckpt.numClasses) {
      await pool.unload(loaded).catch(() => undefined);
      throw new ModelUnusableError(ckpt.id, `it produces ${loaded.classes} logits but model ${model.id} is registered with ${ckpt.numClasses} classes`);
    }
    if (weights.layerHashes) this.heldLayers.set(loaded.key, weights.layerHashes);
    if (!this.subsetsByModel.has(model.id)) this.subsetsByModel.set(model.id, Promise.resolve(loaded.subsets));
    return loaded;
  }

  /**
   * The parameter subsets a model answers to by name ('all', 'head', and its own, e.g. Mantis's
   * 'adapter_head'), with their layers and sizes: from a checkpoint of it loaded already, or by
   * loading the model once without weights (then unloaded). Remembered per model.
   */
  parameterSubsets(model: ComputeModel): Promise<readonly SubsetInfo[]> {
    let subsets = this.subsetsByModel.get(model.id);
    if (!subsets) {
      subsets = (async () => {
        const pool = await this.pool();
        const unusable = (reason: string) => new ModelUnusableError(null, reason, model.id);
        let loaded: PoolModel;
        try {
          loaded = await pool.load(sourceOf(model, null, unusable));
        } catch (error) {
          throw error instanceof ModelUnusableError ? error : unusable(firstLine(error));
        }
        await pool.unload(loaded).catch(() => undefined);
        return loaded.subsets;
      })();
      const mine = subsets;
      this.subsetsByModel.set(model.id, mine);
      mine.catch(() => this.subsetsByModel.get(model.id) === mine && this.subsetsByModel.delete(model.id));
    }
    return subsets;
  }

  /**
   * The trunk features of a batch over `subset` from the frozen-trunk cache (computed and stored
   * where missing), or null where the cache does not serve it ('all', the cache off, a trunk that is
   * the input alone): then the engine starts from the series.
   */
  private trunkBatch(ckpt: ComputeCheckpoint, pool: ComputePool, model: PoolModel, batch: Pick<SampleBatch, 'ids' | 'x'>, subset: ParameterSubset, signal?: AbortSignal): Promise<TrunkBatch | null> {
    if (!this.trunk.enabled || subset === ALL_PARAMETERS) return Promise.resolve(null);
    return (async () => {
      const producer = await this.producer();
      return this.trunk.features({ checkpointId: ckpt.id, modelId: ckpt.model.id, pool, model, producer, ids: batch.ids, x: batch.x, subset, ...(signal ? { signal } : {}) });
    })();
  }

  private count(samples: number): void {
    this.counters.calls++;
    this.counters.samples += samples;
  }

  /**
   * Every per-sample term (one pass: logits, π, loss, correct, ‖A‖, Tr H, λmin H, ‖G‖, and kNorm and
   * kTrace over `opts.subset`) of a batch, as columns.
   */
  async metricColumns(ckpt: ComputeCheckpoint, batch: SampleBatch, opts: ComputeOptions = {}): Promise<MetricColumns> {
    if (batch.ids.length === 0) return { sampleIds: [], columns: {} };
    const subset = opts.subset ?? ALL_PARAMETERS;
    return this.withModel(ckpt, async (pool, model) => {
      this.count(batch.ids.length);
      const signal = opts.signal ? { signal: opts.signal } : {};
      const trunk = await this.trunkBatch(ckpt, pool, model, batch, subset, opts.signal);
      opts.onTrunkHits?.(trunk?.hits ?? 0);
      const t = trunk
        ? await pool.computeTerms(model, trunk.features, batch.labels, { subset: engineSubset(subset), fromTrunk: { width: trunk.width }, ...signal })
        : await pool.computeTerms(model, batch.x, batch.labels, { subset: engineSubset(subset), ...signal });
      invariant(t.loss && t.correct && t.gNorm, 'labelled samples give loss, correct and ‖G‖');
      return {
        sampleIds: batch.ids,
        columns: {
          logits: t.logits,
          probs: t.probs,
          loss: t.loss,
          correct: Array.from(t.correct, (c) => c === 1),
          aNorm: t.aNorm,
          hTrace: t.hTrace,
          hMinEig: t.hMinEig,
          gNorm: t.gNorm,
          kNorm: t.kNorm,
          kTrace: t.kTrace,
        },
      };
    });
  }

  /** kCross(x; T) over `opts.subset` of each sample of a batch against the target set T. */
  async kCross(ckpt: ComputeCheckpoint, targetKey: string, batch: SampleBatch, opts: ComputeOptions = {}): Promise<CrossValue[]> {
    if (batch.ids.length === 0) return [];
    const subset = opts.subset ?? ALL_PARAMETERS;
    const target = await this.targetSeries(ckpt, targetKey);
    return this.withModel(ckpt, async (pool, model) => {
      this.count(batch.ids.length);
      const signal = opts.signal ? { signal: opts.signal } : {};
      const trunk = await this.trunkBatch(ckpt, pool, model, batch, subset, opts.signal);
      const targetTrunk = trunk && (await this.trunkBatch(ckpt, pool, model, target, subset, opts.signal));
      opts.onTrunkHits?.(trunk?.hits ?? 0);
      const r =
        trunk && targetTrunk
          ? await pool.kCross(model, trunk.features, targetTrunk.features, { subset: engineSubset(subset), fromTrunk: { width: trunk.width }, ...signal })
          : await pool.kCross(model, batch.x, target.x, { subset: engineSubset(subset), ...signal });
      return batch.ids.map((sampleId, i) => ({ sampleId, kCross: r.kCross[i] as number }));
    });
  }

  /** log π(·|x) of a batch, [n, V] (float64). */
  async logProbs(ckpt: ComputeCheckpoint, batch: SampleBatch): Promise<Float64Array> {
    const logits = await this.withModel(ckpt, async (pool, model) => {
      this.count(batch.ids.length);
      return (await pool.selfKernel(model, batch.x, { returnK: false })).logits;
    });
    return logSoftmax(logits, ckpt.numClasses);
  }

  /**
   * The first-order terms of one SGD step of rate η on (x_u, y_u) seen at x_o (docs/concepts.md): A(x_o),
   * K(x_o, x_u) over the parameter subset (the step moves only those parameters), G(x_u, y_u), and
   * the predicted Δz and Δlog π(·|x_o) = −η A K G.
   */
  async firstOrder(ckpt: ComputeCheckpoint, observed: SampleBatch, updated: SampleBatch, eta: number, subset: ParameterSubset = ALL_PARAMETERS) {
    invariant(observed.ids.length === 1 && updated.ids.length === 1, 'firstOrder takes one observed and one updated sample');
    return this.withModel(ckpt, async (pool, model) => {
      this.count(2);
      const to = await this.trunkBatch(ckpt, pool, model, observed, subset);
      const tu = to && (await this.trunkBatch(ckpt, pool, model, updated, subset));
      const cross =
        to && tu
          ? await pool.crossKernel(model, to.features, tu.features, { returnK: true, subset: engineSubset(subset), fromTrunk: { width: to.width } })
          : await pool.crossKernel(model, observed.x, updated.x, { returnK: true, subset: engineSubset(subset) });
      const predicted = firstOrderFromKernel(cross, { yu: updated.labels, eta });
      const V = ckpt.numClasses;
      const o = outputTerms(cross.logitsO, V, undefined, true);
      const u = outputTerms(cross.logitsU, V, updated.labels, true);
      invariant(o.A && u.G && cross.K, 'matrices were asked for');
      return {
        V,
        A: o.A,
        K: cross.K,
        G: u.G,
        deltaLogits: predicted.deltaLogits,
        deltaLogProbs: predicted.deltaLogProbs,
        logProbs: logSoftmax(cross.logitsO, V),
      };
    });
  }

  /**
   * Computes the per-sample terms of these samples, K over `subset`, and writes the missing values
   * back (marked with this producer), once: a sample already being computed over the same subset by
   * a concurrent request in this process is waited for instead of computed again. Resolves when
   * every value is stored.
   */
  fillSampleTerms(ckpt: ComputeCheckpoint, sampleIds: readonly number[], subset: ParameterSubset = ALL_PARAMETERS): Promise<void> {
    return this.singleFlight(
      sampleIds.map((id) => ({ key: `m:${ckpt.id}:${subset}:${id}`, id })),
      async (ids) => {
        const batch = await this.samples(ckpt, ids);
        const columns = await this.metricColumns(ckpt, batch, { subset });
        await writeComputedTerms(this.db, checkpointShape(ckpt), columns, subset, await this.producerRef(), columnField('computed'));
      },
    );
  }

  /** `fillSampleTerms` for kCross against one target set, over `subset`. */
  fillKCross(ckpt: ComputeCheckpoint, targetKey: string, sampleIds: readonly number[], subset: ParameterSubset = ALL_PARAMETERS): Promise<void> {
    return this.singleFlight(
      sampleIds.map((id) => ({ key: `x:${ckpt.id}:${subset}:${targetKey}:${id}`, id })),
      async (ids) => {
        const batch = await this.samples(ckpt, ids);
        const values = await this.kCross(ckpt, targetKey, batch, { subset });
        await writeCrossMetrics(this.db, checkpointShape(ckpt), targetKey, subset, values, await this.producerRef());
      },
    );
  }

  private async singleFlight(items: readonly { key: string; id: number }[], work: (ids: number[]) => Promise<void>): Promise<void> {
    const waits = new Set<Promise<void>>();
    const todo: { key: string; id: number }[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      if (seen.has(item.key)) continue;
      seen.add(item.key);
      const running = this.inflight.get(item.key);
      if (running) waits.add(running);
      else todo.push(item);
    }
    if (todo.length > 0) {
      const mine = work(todo.map((t) => t.id));
      for (const t of todo) this.inflight.set(t.key, mine);
      const done = () => {
        for (const t of todo) if (this.inflight.get(t.key) === mine) this.inflight.delete(t.key);
      };
      mine.then(done, done);
      waits.add(mine);
    }
    await Promise.all(waits);
  }
}

/**
 * A subset name as the engine takes it. Its type lists the names every model may answer to, but the
 * engine resolves any name the model itself defines; the request path's checkSubset
 * (src/modules/terms/subsets.ts) has checked this one against the model's own list.
 */
function engineSubset(subset: ParameterSubset): Subset {
  return subset as Subset;
}

/** The first line of an error's message, at most 300 characters (a reason a client may read). */
/** A checkpoint's weight specs and layer hashes (storage.ts checkpointWeightIndex). */
type WeightIndex = NonNullable<Awaited<ReturnType<typeof checkpointWeightIndex>>>;

/** How a checkpoint is written into an idle model: which model, and the layers that differ. */
interface Swap {
  /** The idle model's cache key (the checkpoint it holds). */
  from: number;
  specs: StoredWeightSpec[];
  hashes: Record<string, string>;
  changed: string[];
  bytes: number;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 300);
}

/**
 * Where the engine loads a stored model from: a built-in architecture by name and config (the
 * shape from the model row), or the TFJS topology; with a checkpoint's weights, or none (the
 * engine initialises them; enough to learn the model's structure).
 */
function sourceOf(model: ComputeModel, weights: { weightSpecs: NonNullable<ModelSource['weightSpecs']>; weightData: Uint8Array } | null, unusable: (reason: string) => Error): ModelSource {
  if (model.format === 'BUILTIN') {
    if (!ARCHITECTURES.includes(model.architecture as ArchitectureName)) {
      throw unusable(`Tangent has no built-in architecture '${model.architecture}' (known: ${ARCHITECTURES.join(', ')})`);
    }
    const config = { ...((model.config ?? {}) as Record<string, unknown>), length: model.inputLength, channels: model.channels, classes: model.numClasses };
    return { architecture: model.architecture as ArchitectureName, config, ...(weights ?? {}) };
  }
  if (!model.topology || typeof model.topology !== 'object') throw unusable(`model ${model.id} has no topology`);
  return weights ? { modelTopology: model.topology, ...weights } : { modelTopology: model.topology };
}

/** log softmax of [n, V] logits, in float64. */
export function logSoftmax(logits: ArrayLike<number>, V: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let base = 0; base < logits.length; base += V) {
    let max = -Infinity;
    for (let j = 0; j < V; j++) max = Math.max(max, logits[base + j] as number);
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp((logits[base + j] as number) - max);
    const lse = max + Math.log(sum);
    for (let j = 0; j < V; j++) out[base + j] = (logits[base + j] as number) - lse;
  }
  return out;
}
