import { BadUserInputError } from '../../platform/errors.js';
import { encodeCopyLine } from '../../platform/db/copy-text.js';
import type { Tx } from '../../platform/db/sql.js';
import type { ProducerRef } from './producers-storage.js';
import type { ParameterSubset } from '../../platform/values/parameter-subset.js';

/** kNorm and kTrace of one sample over a named parameter subset. */
export interface SubsetValue {
  sampleId: number;
  kNorm: number | null;
  kTrace: number | null;
}

/**
 * Writes kNorm and kTrace over a named parameter subset (not 'all': those are sample_metric's
 * columns) at a checkpoint inside `tx` (the caller's transaction), with the rules of the metrics
 * writer for a server write: COPY into a temporary table, every sample checked to be of the run's
 * dataset, only missing values filled (a stored value stays as it is), so sending a batch twice
 * leaves the same table. Only Tangent computes these values (no mutation records them), so the
 * producer is a server (checked, with the values, before the transaction: src/modules/terms/write-terms.ts).
 */
export async function copySubsetMetrics(tx: Tx, checkpoint: { id: number; datasetId: number }, subset: ParameterSubset, rows: readonly SubsetValue[], producer: ProducerRef): Promise<number> {
  // named: subsetMetrics.tempTable
  await tx.query('CREATE TEMP TABLE subset_in (sample_id int NOT NULL, k_norm real, k_trace real) ON COMMIT DROP');
  // named: subsetMetrics.copy
  await tx.copyFrom(
    'subset_in',
    ['sample_id', 'k_norm', 'k_trace'],
    (function* () {
      for (const row of rows) yield encodeCopyLine([row.sampleId, row.kNorm, row.kTrace]);
    })(),
  );
  // named: subsetMetrics.foreignSample
  const [foreign] = await tx.query<{ sample_id: number }>(
    'SELECT i.sample_id FROM subset_in i LEFT JOIN sample s ON s.id = i.sample_id AND s.dataset_id = $1 WHERE s.id IS NULL LIMIT 1',
    [checkpoint.datasetId],
  );
  if (foreign) throw new BadUserInputError(`Sample ${foreign.sample_id} is not a sample of this run's dataset`, 'sampleIds');
  // Rows in sample order, so overlapping writers lock them in the same order (as the metrics writer does).
  // named: subsetMetrics.upsert
  const [written] = await tx.query<{ n: number }>(
    `WITH written AS (
       INSERT INTO sample_subset_metric (checkpoint_id, subset, sample_id, k_norm, k_norm_src, k_trace, k_trace_src)
       SELECT $1, $2, sample_id, k_norm, CASE WHEN k_norm IS NULL THEN NULL ELSE $3::smallint END,
              k_trace, CASE WHEN k_trace IS NULL THEN NULL ELSE $3::smallint END
       FROM subset_in ORDER BY sample_id
       ON CONFLICT (checkpoint_id, subset, sample_id) DO UPDATE SET
         k_norm = COALESCE(sample_subset_metric.k_norm, EXCLUDED.k_norm),
         k_norm_src = CASE WHEN sample_subset_metric.k_norm IS NULL THEN EXCLUDED.k_norm_src ELSE sample_subset_metric.k_norm_src END,
         k_trace = COALESCE(sample_subset_metric.k_trace, EXCLUDED.k_trace),
         k_trace_src = CASE WHEN sample_subset_metric.k_trace IS NULL THEN EXCLUDED.k_trace_src ELSE sample_subset_metric.k_trace_src END,
         updated_at = now()
       WHERE sample_subset_metric.k_norm IS NULL OR sample_subset_metric.k_trace IS NULL
       RETURNING 1
     ) SELECT count(*)::int AS n FROM written`,
    [checkpoint.id, subset, producer.id],
  );
  return Number(written?.n ?? 0);
}
