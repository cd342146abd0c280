import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Run } from '../../platform/db/generated/client.js';
import { byKey, countsByKey } from '../../platform/db/loader-rows.js';

/** The runs module's loaders of one request (src/modules/loaders.ts composes them). */
export function runLoaders(db: Database) {
  const loaders = {
    // Plain SQL, and each run's checkpoint count in the same statement (an index-only count on
    // checkpoint (run_id, step)), primed into checkpointCountByRun: a run read with its count is one
    // round trip, not two, and neither pays Prisma's per-call query compilation. Rows have the Prisma shape.
    runById: new DataLoader<number, Run | null>(async (ids) => {
      // named: run.byIdsWithCheckpointCount
      const rows = await db.sql.query<Run & { checkpointCount: number }>(
        `SELECT id, name, model_id AS "modelId", dataset_id AS "datasetId", config, status::text AS status,
                idempotency_key AS "idempotencyKey", created_at AS "createdAt", updated_at AS "updatedAt",
                (SELECT count(*)::int FROM checkpoint c WHERE c.run_id = run.id) AS "checkpointCount"
         FROM run WHERE id = ANY($1::int[])`,
        [[...ids]],
      );
      return byKey(
        ids,
        rows.map(({ checkpointCount, ...run }) => {
          loaders.checkpointCountByRun.prime(run.id, checkpointCount);
          return run;
        }),
        (r) => r.id,
      );
    }),
    checkpointCountByRun: new DataLoader<number, number>(async (ids) => {
      // named: checkpoint.countByRuns
      const rows = await db.sql.query<{ key: number; count: number }>(
        `SELECT run_id AS key, count(*)::int AS count FROM checkpoint WHERE run_id = ANY($1::int[]) GROUP BY run_id`,
        [[...ids]],
      );
      return countsByKey(ids, rows);
    }),
  };
  return loaders;
}
