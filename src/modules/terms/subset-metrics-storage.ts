import { BadUserInputError, invariant } from '../../platform/errors.js';
import { encodeCopyLine } from '../../platform/db/copy-text.js';
import type { Database } from '../../platform/db/database.js';
import { writeMetricColumns, type CheckpointShape, type FieldNamer, type MetricColumns } from './metrics-storage.js';
import { producerId, type ProducerKey } from './producers-storage.js';
import { ALL_PARAMETERS, KERNEL_TERMS } from '../../platform/values/term.js';

/** kNorm and kTrace of one sample over a named parameter subset. */
export interface SubsetValue {
  sampleId: number;
  kNorm: number | null;
  kTrace: number | null;
}

/**
 * Writes kNorm and kTrace over a named parameter subset (not 'all': those are sample_metric's
 * columns) at a checkpoint, in one transaction, with the rules of writeMetrics for a server write:
 * COPY into a temporary table, every sample checked to be of the run's dataset, only missing values
 * filled (a stored value stays as it is), so sending a batch twice leaves the same table. Only
 * Tangent computes these values (no mutation records them), so the producer is a server.
 */
export async function writeSubsetMetrics(
  db: Database,
  checkpoint: { id: number; datasetId: number },
  subset: string,
  rows: readonly SubsetValue[],
  producer: ProducerKey,
): Promise<number> {
  invariant(subset !== ALL_PARAMETERS, "kernel terms over 'all' are sample_metric's columns");
  invariant(producer.kind === 'SERVER', 'only Tangent writes kernel terms over a named subset');
  if (rows.length === 0) return 0;
  for (const row of rows) {
    for (const v of [row.kNorm, row.kTrace]) invariant(v === null || (Number.isFinite(v) && Number.isFinite(Math.fround(v))), `a finite kernel term of sample ${row.sampleId}`);
  }
  const src = await producerId(db, producer);
  return db.transaction(async (tx) => {
    await tx.query('CREATE TEMP TABLE subset_in (sample_id int NOT NULL, k_norm real, k_trace real) ON COMMIT DROP');
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
    // Rows in sample order, so overlapping writers lock them in the same order (as writeMetrics does).
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
      [checkpoint.id, subset, src],
    );
    return Number(written?.n ?? 0);
  });
}

/**
 * Writes what one pass of the engine computed over a parameter subset: over 'all', every column
 * into sample_metric; over a named subset, kNorm and kTrace into sample_subset_metric and the other
 * terms (which do not depend on the subset) into sample_metric. Server writes: they only fill what
 * is missing. Through a `joiningDb` view both writes join the caller's transaction.
 */
export async function writeComputedTerms(db: Database, checkpoint: CheckpointShape, batch: MetricColumns, subset: string, producer: ProducerKey, field: FieldNamer): Promise<void> {
  if (subset === ALL_PARAMETERS) {
    await writeMetricColumns(db, checkpoint, batch, producer, field);
    return;
  }
  const ids = batch.sampleIds;
  invariant(ids, 'computed terms name their samples by id');
  const kernel = Object.fromEntries(KERNEL_TERMS.map((t) => [t.field, batch.columns[t.field] as ArrayLike<number | null> | undefined]));
  const rest = Object.fromEntries(Object.entries(batch.columns).filter(([field]) => !KERNEL_TERMS.some((t) => t.field === field)));
  if (Object.keys(rest).length > 0) await writeMetricColumns(db, checkpoint, { sampleIds: ids, columns: rest }, producer, field);
  if (kernel.kNorm || kernel.kTrace) {
    const rows = Array.from(ids, (sampleId, i) => ({ sampleId, kNorm: kernel.kNorm?.[i] ?? null, kTrace: kernel.kTrace?.[i] ?? null }));
    await writeSubsetMetrics(db, checkpoint, subset, rows, producer);
  }
}
