import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Checkpoint, Run } from '../../platform/db/generated/client.js';
import { byKey, countsByKey } from '../../platform/db/loader-rows.js';
import { checkpointColumns, checkpointFromJson } from '../checkpoints/columns.js';

/** A run row's columns under the Prisma field names, in this order, of the table `run` (or alias `r`). */
const RUN_FIELDS = ['id', 'name', 'modelId', 'datasetId', 'config', 'status', 'idempotencyKey', 'createdAt', 'updatedAt'] as const;
const runColumns = (of: string) =>
  `${of}id, ${of}name, ${of}model_id AS "modelId", ${of}dataset_id AS "datasetId", ${of}config, ${of}status::text AS status,
   ${of}idempotency_key AS "idempotencyKey", ${of}created_at AS "createdAt", ${of}updated_at AS "updatedAt"`;

/** The first `take` checkpoints of a run in step order, as read with the run (see runWithFirstCheckpoints). */
export interface FirstCheckpoints {
  take: number;
  rows: Checkpoint[];
}

/**
 * A run, its checkpoint count and its first `take` checkpoints in step order, in one statement: what
 * a client asking for a run with a page of its checkpoints needs, in one round trip instead of two.
 * The checkpoints come as one JSON array: PostgreSQL plans and runs this for less than the two
 * statements it replaces, where a lateral join (a row per checkpoint) cost more than both.
 * Null when there is no run.
 */
export async function runWithFirstCheckpoints(db: Database, runId: number, take: number): Promise<{ run: Run; checkpointCount: number; first: FirstCheckpoints } | null> {
  // named: run.byIdWithFirstCheckpoints
  const { rows } = await db.sql.queryArrays(
    `SELECT ${runColumns('r.')}, (SELECT count(*)::int FROM checkpoint k WHERE k.run_id = r.id),
            (SELECT json_agg(c) FROM (SELECT ${checkpointColumns()} FROM checkpoint WHERE run_id = r.id ORDER BY step LIMIT $2) c)
     FROM run r WHERE r.id = $1`,
    [runId, take],
  );
  const head = rows[0];
  if (!head) return null;
  const run = {} as Record<string, unknown>;
  RUN_FIELDS.forEach((field, i) => {
    run[field] = head[i];
  });
  // json_agg of no rows is null. JSON.parse gives every column its value but created_at, a string.
  const page = (head[RUN_FIELDS.length + 1] as Record<string, unknown>[] | null) ?? [];
  return { run: run as unknown as Run, checkpointCount: Number(head[RUN_FIELDS.length]), first: { take, rows: page.map(checkpointFromJson) } };
}

/** The runs module's loaders of one request (src/modules/loaders.ts composes them). */
export function runLoaders(db: Database) {
  const loaders = {
    // Plain SQL, and each run's checkpoint count in the same statement (an index-only count on
    // checkpoint (run_id, step)), primed into checkpointCountByRun: a run read with its count is one
    // round trip, not two, and neither pays Prisma's per-call query compilation. Rows have the Prisma shape.
    runById: new DataLoader<number, Run | null>(async (ids) => {
      // named: run.byIdsWithCheckpointCount
      const rows = await db.sql.query<Run & { checkpointCount: number }>(
        `SELECT ${runColumns('')},
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
    /** First pages of checkpoints read with their run (runWithFirstCheckpoints), by run id: listCheckpoints takes its page from here. */
    firstCheckpoints: new Map<number, FirstCheckpoints>(),
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
