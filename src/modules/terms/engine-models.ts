import type { PoolModel } from '../../compute/index.js';

/** What the model cache reports (serverInfo.compute). */
export interface ModelCacheStats {
  /** Models loaded into the compute threads since start (a hit loads nothing). */
  loads: number;
  /** Requests served by a model already loaded, or already loading. */
  hits: number;
  /** Models loaded now. */
  models: number;
  /** Bytes they hold, counted as weight bytes × compute threads (every thread keeps its own copy). */
  bytes: number;
  capacityBytes: number;
}

interface Entry {
  key: number;
  bytes: number;
  model: Promise<PoolModel>;
  /** Computations using the model now; an entry in use is never evicted. */
  users: number;
  loaded: boolean;
}

/**
 * The checkpoint models loaded in the compute threads, bounded by bytes and evicted least recently
 * used first. Loading is single-flight: a burst of requests on one checkpoint shares one load.
 * Written by hand rather than with an LRU library because eviction must skip models in use and
 * must await an unload in the threads, which the usual caches (sync `dispose`, no pinning) lack.
 */
export class ModelCache {
  /** In recency order: the first entry is the least recently used. */
  private readonly entries = new Map<number, Entry>();
  private totalBytes = 0;
  private loads = 0;
  private hits = 0;

  constructor(
    private readonly capacityBytes: number,
    private readonly unload: (model: PoolModel) => Promise<void>,
  ) {}

  /**
   * Runs `fn` with the model of `key`, loading it with `load` unless it is loaded or loading.
   * `bytes` is what the loaded model will hold.
   */
  async use<T>(key: number, bytes: number, load: () => Promise<PoolModel>, fn: (model: PoolModel) => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      this.loads++;
      const created: Entry = { key, bytes, model: load(), users: 0, loaded: false };
      entry = created;
      this.entries.set(key, created);
      this.totalBytes += bytes;
      created.model.then(
        () => (created.loaded = true),
        () => this.forget(created),
      );
    }
    entry.users++;
    try {
      return await fn(await entry.model);
    } finally {
      entry.users--;
      await this.evict();
    }
  }

  stats(): ModelCacheStats {
    return { loads: this.loads, hits: this.hits, models: this.entries.size, bytes: this.totalBytes, capacityBytes: this.capacityBytes };
  }

  /** Unloads every idle model (at shutdown the threads go anyway; this is for tests and tools). */
  async clear(): Promise<void> {
    for (const entry of [...this.entries.values()]) if (entry.users === 0 && entry.loaded) await this.drop(entry);
  }

  private async evict(): Promise<void> {
    for (const entry of [...this.entries.values()]) {
      if (this.totalBytes <= this.capacityBytes) return;
      if (entry.users === 0 && entry.loaded) await this.drop(entry);
    }
  }

  private async drop(entry: Entry): Promise<void> {
    if (!this.forget(entry)) return;
    // A thread that cannot unload has died, and its copy with it: nothing is left to free.
    await this.unload(await entry.model).catch(() => undefined);
  }

  /** Removes an entry from the books; false when it was gone already. */
  private forget(entry: Entry): boolean {
    if (this.entries.get(entry.key) !== entry) return false;
    this.entries.delete(entry.key);
    this.totalBytes -= entry.bytes;
    return true;
  }
}
