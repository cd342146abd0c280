import DataLoader from 'dataloader';
import type { Database } from '../platform/db/database.js';
import type { Checkpoint, CheckpointWeights, Dataset, Model, Producer, Run, Sample } from '../platform/db/generated/client.js';

/** Returns `rows` in the order of `keys` (null where absent), as DataLoader requires. */
function byKey<K, R>(keys: readonly K[], rows: R[], keyOf: (row: R) => K): (R | null)[] {
  const map = new Map<K, R>();
  for (const row of rows) map.set(keyOf(row), row);
  return keys.map((key) => map.get(key) ?? null);
}

/** Counts per foreign key, zero where a key has no rows. */
function countsByKey<K>(keys: readonly K[], rows: { key: K; count: number }[]): number[] {
  const map = new Map(rows.map((row) => [row.key, row.count]));
  return keys.map((key) => map.get(key) ?? 0);
}

/** A checkpoint row's columns under the Prisma field names, for plain-SQL reads of checkpoints. */
export const CHECKPOINT_COLUMNS = `id, run_id AS "runId", step, epoch, learning_rate AS "learningRate", weight_bytes AS "weightBytes",
  weight_sha256 AS "weightSha256", created_at AS "createdAt"`;

/**
 * The loaders of one request: each batches the lookups a query makes in one tick into one
 * statement, and caches them for the rest of that request only.
 */
export function createLoaders(db: Database) {
  const { prisma } = db;
  const loaders = {
    datasetById: new DataLoader<number, Dataset | null>(async (ids) =>
      byKey(ids, await prisma.dataset.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
    sampleById: new DataLoader<number, Sample | null>(async (ids) =>
      byKey(ids, await prisma.sample.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
    modelById: new DataLoader<number, Model | null>(async (ids) =>
      byKey(ids, await prisma.model.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
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
    producerById: new DataLoader<number, Producer | null>(async (ids) =>
      byKey(ids, await prisma.producer.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
    /** Key: `${datasetId}` for all samples, `${datasetId}/${split}` for one split. */
    sampleCount: new DataLoader<string, number>(async (keys) => {
      const datasetIds = [...new Set(keys.map((key) => Number(key.split('/')[0])))];
      const groups = await prisma.sample.groupBy({
        by: ['datasetId', 'split'],
        where: { datasetId: { in: datasetIds } },
        _count: { _all: true },
      });
      const counts = new Map<string, number>();
      for (const g of groups) {
        counts.set(`${g.datasetId}`, (counts.get(`${g.datasetId}`) ?? 0) + g._count._all);
        counts.set(`${g.datasetId}/${g.split}`, g._count._all);
      }
      return keys.map((key) => counts.get(key) ?? 0);
    }),
    splitsByDataset: new DataLoader<number, { split: string; count: number }[]>(async (ids) => {
      const groups = await prisma.sample.groupBy({
        by: ['datasetId', 'split'],
        where: { datasetId: { in: [...ids] } },
        _count: { _all: true },
        orderBy: { split: 'asc' },
      });
      return ids.map((id) =>
        groups.filter((g) => g.datasetId === id).map((g) => ({ split: g.split, count: g._count._all })),
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

export type Loaders = ReturnType<typeof createLoaders>;
