import { createHash } from 'node:crypto';
import type { ComputePool, PoolModel } from '../../compute/index.js';
import type { Database } from '../../platform/db/database.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { checkpointLayerHashes } from '../checkpoints/service.js';
import { evictTrunkFeatures, purgeTrunkFeatures, putTrunkFeatures, takeTrunkFeatures, trunkFeatureTotals } from './trunk-cache-storage.js';

/** What the frozen-trunk cache reports (serverInfo.compute.trunkCache). */
export interface TrunkCacheStats {
  /** Samples whose trunk activations this process read from the cache: forward passes of the trunk saved. */
  hits: number;
  /** Samples whose trunk this process computed (and stored). */
  misses: number;
  capacityBytes: number;
}

/** A batch's trunk features, and how many of them came from the cache. */
export interface TrunkBatch {
  /** [n, width], in the batch's sample order. */
  features: Float32Array;
  width: number;
  hits: number;
}

/** What a batch needs of the compute service: the checkpoint's ids, the model loaded in the pool, the samples. */
export interface TrunkRequest {
  checkpointId: number;
  modelId: number;
  pool: ComputePool;
  model: PoolModel;
  /** Who computes: backend and version (features from another backend or engine are other numbers). */
  producer: { backend: string; version: string };
  ids: readonly number[];
  x: Float32Array;
  subset: ParameterSubset;
  signal?: AbortSignal;
}

/**
 * The frozen-trunk cache of a process: for a kernel term over a subset (Mantis's 'head', …), the
 * activations entering the subset depend only on the sample and the weights outside it. Each
 * checkpoint keeps a hash per layer (CheckpointWeights.layerHashes); the trunk key hashes the model,
 * the subset's layers, every other layer's hash, and the backend and engine version, so every
 * checkpoint of a head fine-tune shares one key and a checkpoint whose trunk changed (one weight is
 * enough) has another. Features live in PostgreSQL (table trunk_feature: they survive a restart and
 * are shared by every process), bounded by TANGENT_TRUNK_CACHE_MB least recently used first (0
 * turns the cache off); purgeTrunkCache empties it. The terms computed from them are the same bits
 * as from the series (src/compute/trunk.ts).
 */
export class TrunkCache {
  private hits = 0;
  private misses = 0;
  /** (model, subset) pairs whose trunk is the input alone: nothing to keep. */
  private readonly noSaving = new Set<string>();

  constructor(
    private readonly db: Database,
    private readonly capacityBytes: number,
  ) {}

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  stats(): TrunkCacheStats {
    return { hits: this.hits, misses: this.misses, capacityBytes: this.capacityBytes };
  }

  /** Rows and bytes held now (every process's). */
  totals(): Promise<{ entries: number; bytes: number }> {
    return trunkFeatureTotals(this.db);
  }

  /** Empties the cache (every process's rows); how many rows went. */
  purge(): Promise<number> {
    return purgeTrunkFeatures(this.db);
  }

  /** The trunk key of a checkpoint over a subset's layers. */
  async trunkKey(r: Pick<TrunkRequest, 'checkpointId' | 'modelId' | 'producer'>, subsetLayers: readonly string[]): Promise<string> {
    const hashes = await checkpointLayerHashes(this.db, r.checkpointId);
    const inSubset = new Set(subsetLayers);
    const trunk = Object.entries(hashes)
      .filter(([layer]) => !inSubset.has(layer))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const key = JSON.stringify({ v: 1, model: r.modelId, backend: r.producer.backend, engine: r.producer.version, subset: [...subsetLayers].sort(), trunk });
    return createHash('sha256').update(key).digest('hex');
  }

  /**
   * The trunk features of a batch over `r.subset`: read for the samples that have them, computed
   * (and stored) for the others. Null when the cache does not serve this request: turned off, the
   * subset is 'all', or its trunk is the input alone.
   */
  async features(r: TrunkRequest): Promise<TrunkBatch | null> {
    if (!this.enabled || r.subset === ALL_PARAMETERS || r.ids.length === 0) return null;
    const info = r.model.subsets.find((s) => s.name === r.subset);
    const pair = `${r.modelId}:${r.subset}`;
    if (info === undefined || this.noSaving.has(pair)) return null;
    const trunk = await this.trunkKey(r, info.layers);
    const stored = await takeTrunkFeatures(this.db, r.modelId, trunk, r.ids);
    const missing: number[] = [];
    r.ids.forEach((id, i) => {
      if (!stored.has(id)) missing.push(i);
    });
    let width = stored.size > 0 ? (stored.values().next().value as Uint8Array).byteLength / 4 : -1;
    let computed: Float32Array | null = null;
    if (missing.length > 0) {
      const per = r.model.inputShape[0] * r.model.inputShape[1];
      const x = new Float32Array(missing.length * per);
      missing.forEach((i, k) => x.set(r.x.subarray(i * per, (i + 1) * per), k * per));
      const t = await r.pool.trunkFeatures(r.model, x, { subset: r.subset as never, ...(r.signal ? { signal: r.signal } : {}) });
      if (!t.saves) {
        this.noSaving.add(pair);
        return null;
      }
      if (width !== -1 && width !== t.width) return null; // rows of another shape under this key: never served
      width = t.width;
      computed = t.features;
      await putTrunkFeatures(this.db, r.modelId, trunk, missing.map((i) => r.ids[i] as number), new Uint8Array(t.features.buffer, t.features.byteOffset, t.features.byteLength), width * 4);
      await evictTrunkFeatures(this.db, this.capacityBytes);
    }
    const features = new Float32Array(r.ids.length * width);
    r.ids.forEach((id, i) => {
      const row = stored.get(id);
      if (row) features.set(new Float32Array(row.buffer.slice(row.byteOffset, row.byteOffset + row.byteLength)), i * width);
    });
    missing.forEach((i, k) => features.set((computed as Float32Array).subarray(k * width, (k + 1) * width), i * width));
    this.hits += r.ids.length - missing.length;
    this.misses += missing.length;
    return { features, width, hits: r.ids.length - missing.length };
  }
}
