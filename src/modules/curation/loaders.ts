import type { Strategy } from './strategy.js';
import type { RankedPage } from './ranking-storage.js';

/**
 * The curation module's loaders of one request (src/modules/loaders.ts composes them).
 * selectionStrategies holds what `storedStrategy` parsed; pagesReadAhead the pages started early. (The checkpoint every curation query
 * starts with is the checkpoints module's `checkpointContextById`.)
 */
export function curationLoaders() {
  return {
    /** Saved selections' strategies as parsed by `storedStrategy`, by selection id (a selection never changes). */
    selectionStrategies: new Map<number, Strategy>(),
    /**
     * Pages of `rankedSamples` read ahead by Query.checkpoint (rank.ts readAheadRankPage), by their
     * exact statement; the resolver takes its page from here once its checks pass.
     */
    pagesReadAhead: new Map<string, Promise<RankedPage>>(),
  };
}

export type CurationLoaders = ReturnType<typeof curationLoaders>;
