import type { Database } from '../platform/db/database.js';
import { checkpointLoaders } from './checkpoints/loaders-storage.js';
import { curationLoaders } from './curation/loaders.js';
import { datasetLoaders } from './datasets/loaders-storage.js';
import { modelLoaders } from './models/loaders-storage.js';
import { runLoaders } from './runs/loaders-storage.js';
import { termLoaders } from './terms/loaders-storage.js';
import { createTermsLoaders } from './terms/loaders.js';

/**
 * The loaders of one request: each batches the lookups a query makes in one tick into one
 * statement, and caches them for the rest of that request only. Each module makes its own (its
 * `loaders-storage.ts`); `ctx.loaders.<name>` is the same whichever module a loader comes from.
 */
export function createLoaders(db: Database) {
  return {
    ...datasetLoaders(db),
    ...modelLoaders(db),
    ...runLoaders(db),
    ...checkpointLoaders(db),
    ...termLoaders(db),
    ...curationLoaders(),
    /** What the terms module keeps per request (inline compute allowance, missing-terms loader); nothing is made until used. */
    terms: createTermsLoaders(),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
