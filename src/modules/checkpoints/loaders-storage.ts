import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Checkpoint, CheckpointWeights } from '../../platform/db/generated/client.js';
import { CHECKPOINT_COLUMNS } from './storage.js';
import { byKey } from '../../platform/db/loader-rows.js';

/**
 * The checkpoints module's loaders of one request (src/modules/loaders.ts composes them).
 * checkpointById is the one place a checkpoint is looked up by id.
 */
export function checkpointLoaders(db: Database) {
  const { prisma } = db;
  return {
    // Plain SQL rather than Prisma: every curation query starts with this lookup, and Prisma's query
    // compiler costs milliseconds per call there (bench:query); the row has the Prisma shape.
    checkpointById: new DataLoader<number, Checkpoint | null>(async (ids) => {
      // named: checkpoint.byIds
      const rows = await db.sql.query<Checkpoint>(
        `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE id = ANY($1::int[])`,
        [[...ids]],
      );
      return byKey(ids, rows, (r) => r.id);
    }),
    weightsByCheckpoint: new DataLoader<number, CheckpointWeights | null>(
      async (ids) =>
        byKey(ids, await prisma.checkpointWeights.findMany({ where: { checkpointId: { in: [...ids] } } }), (r) => r.checkpointId),
      // Weights can be tens of megabytes: load each once, but do not batch many into one result.
      { maxBatchSize: 4 },
    ),
  };
}
