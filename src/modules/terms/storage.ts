import type { Database } from '../../platform/db/database.js';
import type { SampleMetric, SampleSubsetMetric } from '../../platform/db/generated/client.js';
import type { Sql } from '../../platform/db/sql.js';
import type { ParameterSubset } from '../../platform/values/parameter-subset.js';
import { readLayers, readWeightIndex, readWeights, type CheckpointWeightsRow, type StoredWeightSpec } from '../checkpoints/service.js';

/**
 * The terms module's reads that belong to no table writer of its own: what the compute service
 * loads (the next checkpoint, sample series, weights; a checkpoint with its model and dataset is the
 * checkpoints module's `loadCheckpointContext`), stored term rows, and the job count the compute
 * policy limits.
 */

/** The id of the run's next checkpoint after `step` (by step), if any. */
export async function nextCheckpointId(db: Database, runId: number, step: number): Promise<number | null> {
  // named: compute.nextCheckpoint
  const [row] = await db.sql.query<{ id: number }>('SELECT id FROM checkpoint WHERE run_id = $1 AND step > $2 ORDER BY step LIMIT 1', [runId, step]);
  return row ? Number(row.id) : null;
}

/** A sample's label and series (raw float32 bytes), as the engine's batches are made from. */
export interface SeriesRow {
  id: number;
  label: number;
  series: Uint8Array;
}

function seriesRows(rows: readonly { id: number; label: number; series: Uint8Array }[]): SeriesRow[] {
  return rows.map((r) => ({ id: Number(r.id), label: Number(r.label), series: r.series }));
}

/** Samples of the dataset among `ids` (ascending, distinct), in id order; ids that are not its samples are left out. */
export async function sampleSeries(db: Database, datasetId: number, ids: readonly number[]): Promise<SeriesRow[]> {
  // named: compute.samples
  const rows = await db.sql.query<{ id: number; label: number; series: Uint8Array }>(
    'SELECT id, label, series FROM sample WHERE dataset_id = $1 AND id = ANY($2::int[]) ORDER BY id',
    [datasetId, ids],
  );
  return seriesRows(rows);
}

/** The samples of one split of the dataset, in id order (a kCross target set). */
export async function splitSeries(db: Database, datasetId: number, split: string): Promise<SeriesRow[]> {
  // named: compute.targetSplit
  const rows = await db.sql.query<{ id: number; label: number; series: Uint8Array }>('SELECT id, label, series FROM sample WHERE dataset_id = $1 AND split = $2 ORDER BY id', [
    datasetId,
    split,
  ]);
  return seriesRows(rows);
}

/** The samples of a saved selection that are in the dataset, in the selection's order (a kCross target set). */
export async function selectionSeries(db: Database, selectionId: number, datasetId: number): Promise<SeriesRow[]> {
  // named: compute.targetSelection
  const rows = await db.sql.query<{ id: number; label: number; series: Uint8Array }>(
    `SELECT s.id, s.label, s.series FROM selection_sample ss JOIN sample s ON s.id = ss.sample_id
     WHERE ss.selection_id = $1 AND s.dataset_id = $2 ORDER BY ss.rank`,
    [selectionId, datasetId],
  );
  return seriesRows(rows);
}

/** A checkpoint's weights: the tfjs weight specs (JSON) and the raw bytes. */
export type WeightsRow = CheckpointWeightsRow;

/** A checkpoint's weight specs and layer hashes (no bytes); null without weights; `inline`: stored whole, before layers were shared. */
export function checkpointWeightIndex(db: Database, checkpointId: number): Promise<{ specs: StoredWeightSpec[]; layerHashes: Record<string, string> | null; inline: boolean } | null> {
  return readWeightIndex(db.sql, checkpointId);
}

/** The stored bytes of these weight layers, by hash. */
export function weightLayers(db: Database, hashes: readonly string[]): Promise<Map<string, Uint8Array>> {
  return readLayers(db.sql, hashes);
}

/** A checkpoint's weights, or null when it has none. */
export async function checkpointWeights(db: Database, checkpointId: number): Promise<WeightsRow | null> {
  return readWeights(db.sql, checkpointId);
}

/** The stored sample_metric rows of these samples at a checkpoint (any order). */
export async function sampleMetricRows(db: Database, checkpointId: number, sampleIds: readonly number[]): Promise<SampleMetric[]> {
  // named: sampleMetric.bySamples
  return db.prisma.sampleMetric.findMany({ where: { checkpointId, sampleId: { in: [...sampleIds] } } });
}

/** The stored sample_subset_metric rows of these samples at a checkpoint, over one named subset (any order). */
export async function sampleSubsetMetricRows(db: Database, checkpointId: number, subset: ParameterSubset, sampleIds: readonly number[]): Promise<SampleSubsetMetric[]> {
  // named: sampleSubsetMetric.bySamples
  return db.prisma.sampleSubsetMetric.findMany({ where: { checkpointId, sampleId: { in: [...sampleIds] }, subset } });
}

/** Jobs this key has QUEUED or RUNNING. */
export async function countActiveJobsOfKey(sql: Sql, keyId: number): Promise<number> {
  // named: computePolicy.activeJobs
  const [row] = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM compute_job WHERE requested_by_key_id = $1 AND status IN ('QUEUED', 'RUNNING')`, [keyId]);
  return Number(row?.n ?? 0);
}
