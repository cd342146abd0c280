import type { Strategy } from './strategy.js';

/**
 * The curation module's loaders of one request (src/modules/loaders.ts composes them).
 * selectionStrategies holds what `storedStrategy` parsed. (The checkpoint every curation query
 * starts with is the checkpoints module's `checkpointContextById`.)
 */
export function curationLoaders() {
  return {
    /** Saved selections' strategies as parsed by `storedStrategy`, by selection id (a selection never changes). */
    selectionStrategies: new Map<number, Strategy>(),
  };
}

export type CurationLoaders = ReturnType<typeof curationLoaders>;
