import type { Database } from '../../platform/db/database.js';

/**
 * The statements behind `Run.probabilityPaths` (src/modules/training/probability-paths.ts): a run's
 * checkpoints in step order, and π (or the logits it comes from) of some samples at all of them.
 */

/** A checkpoint of the run, as a point of a path. */
export interface PathPoint {
  id: number;
  step: number;
  epoch: number | null;
}

/** The run's checkpoints in step order. */
export async function runPathPoints(db: Database, runId: number): Promise<PathPoint[]> {
  // named: paths.points
  const rows = await db.sql.query<{ id: number; step: number; epoch: number | null }>('SELECT id, step, epoch FROM checkpoint WHERE run_id = $1 ORDER BY step, id', [runId]);
  return rows.map((r) => ({ id: Number(r.id), step: Number(r.step), epoch: r.epoch === null ? null : Number(r.epoch) }));
}

/** One stored (checkpoint, sample) row's π or logits (null where not stored). */
export interface PathValue {
  checkpointId: number;
  sampleId: number;
  probs: number[] | null;
  logits: number[] | null;
}

/**
 * The stored probs and logits of these samples at these checkpoints (rows with neither are left out).
 * One statement for the whole run: a 450-point × 100-sample path is 45,000 short rows.
 */
export async function pathValues(db: Database, checkpointIds: readonly number[], sampleIds: readonly number[]): Promise<PathValue[]> {
  if (checkpointIds.length === 0 || sampleIds.length === 0) return [];
  // named: paths.values
  const rows = await db.sql.query<{ checkpoint_id: number; sample_id: number; probs: number[] | null; logits: number[] | null }>(
    // Logits only where probs are missing: reading (and parsing) both would double the work.
    `SELECT checkpoint_id, sample_id, CASE WHEN cardinality(probs) > 0 THEN probs END AS probs,
            CASE WHEN cardinality(probs) > 0 THEN NULL ELSE logits END AS logits
     FROM sample_metric
     WHERE checkpoint_id = ANY($1::int[]) AND sample_id = ANY($2::int[])
       AND (cardinality(probs) > 0 OR cardinality(logits) > 0)`,
    [checkpointIds, sampleIds],
  );
  return rows.map((r) => ({ checkpointId: Number(r.checkpoint_id), sampleId: Number(r.sample_id), probs: r.probs, logits: r.logits }));
}
