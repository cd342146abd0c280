import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Checkpoint } from '../../platform/db/generated/client.js';
import { checkpointInfosByIds, type CheckpointInfo } from './ranking-storage.js';
import type { Strategy } from './strategy.js';

/** A checkpoint row (the Prisma shape, as `checkpointById` has it) with what curation queries need of its run and dataset. */
export interface CheckpointWithInfo {
  checkpoint: Checkpoint;
  info: CheckpointInfo;
}

/**
 * The curation module's loaders of one request (src/modules/loaders.ts composes them).
 * checkpointInfoById reads a checkpoint with its run's dataset in one statement: every curation
 * query starts with it, and three loader round trips (checkpoint, run, dataset) would cost two
 * more on that hot path. `checkpointInfo` primes `checkpointById` with the checkpoint it read.
 * selectionStrategies holds what `storedStrategy` parsed.
 */
export function curationLoaders(db: Database) {
  return {
    checkpointInfoById: new DataLoader<number, CheckpointWithInfo | null>(async (ids) => {
      const map = new Map((await checkpointInfosByIds(db.sql, ids)).map((row) => [row.info.id, row]));
      return ids.map((id) => map.get(id) ?? null);
    }),
    /** Saved selections' strategies as parsed by `storedStrategy`, by selection id (a selection never changes). */
    selectionStrategies: new Map<number, Strategy>(),
  };
}

export type CurationLoaders = ReturnType<typeof curationLoaders>;
