import type { PoolModel } from '../../compute/index.js';

/** What the model cache reports (serverInfo.compute). */
export interface ModelCacheStats {
  /** Models loaded into the compute threads since start (a hit loads nothing). */
  loads: number;
  /** Of those, loads that wrote a checkpoint's changed layers into an idle model of the same family. */
  swaps: number;
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
  family: number | undefined;
  /** choosing: looking for (or waiting on) a family model to reuse; loading; loaded. */
  stage: 'choosing' | 'loading' | 'loaded';
  /** Whether `bytes` are counted in the total (from the moment its load starts). */
  counted: boolean;
  model: Promise<PoolModel>;
  /** The model once loaded. */
  value: PoolModel | undefined;
  /** Computations using the model now; an entry in use is never evicted. */
  users: number;
}

/** A loaded model of the family; `busy` while computations use it. */
export interface FamilyModel {
  key: number;
  model: PoolModel;
  busy: boolean;
}

/** A model handed to `load` to write the new checkpoint's weights into. */
export type IdleModel = Omit<FamilyModel, 'busy'>;

/**
 * Models of one family (one stored model: one topology) can take each other's weights. On a miss,
 * `choose` is shown the family's loaded models and picks one to load the new checkpoint into, or
 * none (then a model is loaded anew). For checkpoints that differ in a few layers (a fine-tune with
 * a frozen trunk) writing those layers is far cheaper than loading a model, so a miss whose pick is
 * busy, or whose family has a model still loading, waits for it (up to REUSE_WAIT_MS) rather than
 * loading another: a burst of requests over many checkpoints takes turns on one model.
 */
export interface Reuse {
  family: number;
  choose: (loaded: readonly FamilyModel[]) => Promise<FamilyModel | null>;
}

/** The longest a miss waits for a family model to come free before it loads a model of its own. */
const REUSE_WAIT_MS = 5_000;

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
  private swaps = 0;
  /** Misses waiting for a model of their family to come free, by family. */
  private readonly waiting = new Map<number, Set<() => void>>();
  private hits = 0;

  constructor(
    private readonly capacityBytes: number,
    private readonly unload: (model: PoolModel) => Promise<void>,
  ) {}

  /**
   * Runs `fn` with the model of `key`, loading it with `load` unless it is loaded or loading.
   * `bytes` is what the loaded model will hold. With `reuse`, `load` may be handed a model of the
   * family, taken off the books: it owns it, and either returns it holding the new weights or
   * unloads it.
   */
  async use<T>(key: number, bytes: number, load: (from: IdleModel | null) => Promise<PoolModel>, fn: (model: PoolModel) => Promise<T>, reuse?: Reuse): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      this.loads++;
      const created: Entry = { key, bytes, family: reuse?.family, stage: 'choosing', counted: false, model: Promise.resolve(null as never), value: undefined, users: 0 };
      created.model = this.open(created, load, reuse);
      entry = created;
      this.entries.set(key, created);
      created.model.then(
        (model) => {
          created.value = model;
          created.stage = 'loaded';
          this.wake(created.family);
        },
        () => {
          this.forget(created);
          this.wake(created.family);
        },
      );
    }
    entry.users++;
    try {
      return await fn(await entry.model);
    } finally {
      entry.users--;
      // Evict before waking: a model a miss of its family waits for is kept for it (see evict).
      const evicting = this.evict();
      if (entry.users === 0) this.wake(entry.family);
      await evicting;
    }
  }

  /**
   * Loads an entry: into a model of the family where `reuse` picks one (waiting for it to come
   * free), anew otherwise.
   */
  private async open(entry: Entry, load: (from: IdleModel | null) => Promise<PoolModel>, reuse: Reuse | undefined): Promise<PoolModel> {
    // Runs on the next tick: `use` has put the entry on the books by then.
    await Promise.resolve();
    const anew = () => {
      this.startLoading(entry);
      return load(null);
    };
    if (!reuse) return anew();
    const deadline = Date.now() + REUSE_WAIT_MS;
    for (;;) {
      const family = [...this.entries.values()].filter((e) => e.family === reuse.family && e !== entry);
      const loaded = family
        .filter((e) => e.stage === 'loaded')
        .reverse() // most recently used first: likely the nearest checkpoint
        .map((e) => ({ key: e.key, model: e.value!, busy: e.users > 0 }));
      // A model on its way will be a candidate once loaded; misses still choosing are not.
      const loading = () => [...this.entries.values()].some((e) => e.family === reuse.family && e !== entry && e.stage === 'loading');
      if (loaded.length === 0 && !loading()) return anew();
      const chosen = loaded.length > 0 ? await reuse.choose(loaded) : null;
      // While `choose` ran, a computation may have started on the pick, another miss may have taken
      // it, or it may have been evicted.
      const taken = chosen && this.entries.get(chosen.key);
      if (taken && taken.users === 0 && taken.stage === 'loaded' && this.forget(taken)) {
        this.swaps++;
        this.startLoading(entry);
        return load({ key: taken.key, model: taken.value! });
      }
      // Every loaded model differs too much, and none is on its way: a model of its own.
      if (!chosen && !loading()) return anew();
      const left = deadline - Date.now();
      if (left <= 0) return anew();
      await this.nextFree(reuse.family, left);
    }
  }

  private startLoading(entry: Entry): void {
    entry.stage = 'loading';
    if (this.entries.get(entry.key) === entry && !entry.counted) {
      entry.counted = true;
      this.totalBytes += entry.bytes;
    }
  }

  /** Resolves when a model of the family comes free or finishes loading, or after `ms`. */
  private nextFree(family: number, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiting.get(family) ?? new Set<() => void>();
      this.waiting.set(family, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(family) === waiters) this.waiting.delete(family);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  private wake(family: number | undefined): void {
    if (family === undefined) return;
    for (const done of [...(this.waiting.get(family) ?? [])]) done();
  }

  stats(): ModelCacheStats {
    return { loads: this.loads, swaps: this.swaps, hits: this.hits, models: this.entries.size, bytes: this.totalBytes, capacityBytes: this.capacityBytes };
  }

  /** Unloads every idle model (at shutdown the threads go anyway; this is for tests and tools). */
  async clear(): Promise<void> {
    for (const entry of [...this.entries.values()]) if (entry.users === 0 && entry.stage === 'loaded') await this.drop(entry);
  }

  private async evict(): Promise<void> {
    // Victims are picked now, in one go: a model a miss of its family is waiting for is about to be
    // reused, not dropped, and the waiters may be woken while the unloads below are awaited.
    const victims: Entry[] = [];
    let total = this.totalBytes;
    for (const entry of this.entries.values()) {
      if (total <= this.capacityBytes) break;
      const wanted = entry.family !== undefined && this.waiting.has(entry.family);
      if (entry.users === 0 && entry.stage === 'loaded' && !wanted) {
        victims.push(entry);
        if (entry.counted) total -= entry.bytes;
      }
    }
    for (const entry of victims) if (entry.users === 0) await this.drop(entry);
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
    if (entry.counted) this.totalBytes -= entry.bytes;
    entry.counted = false;
    return true;
  }
}
