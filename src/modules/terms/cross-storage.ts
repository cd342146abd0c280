import { BadUserInputError, ConflictError } from '../../platform/errors.js';
import { encodeCopyLine } from '../../platform/db/copy-text.js';
import type { Tx } from '../../platform/db/sql.js';
import type { ProducerRef } from './producers-storage.js';
import type { ParameterSubset } from '../../platform/values/parameter-subset.js';

export interface CrossValue {
  sampleId: number;
  kCross: number;
}

/**
 * Writes kCross(x; T) values at a checkpoint for one target set and parameter subset inside `tx`
 * (the caller's transaction), with the same rules as the per-sample metrics
 * (src/modules/terms/metrics-storage.ts): COPY into a temporary table, every sample checked to
 * belong to the run's dataset, re-sending a batch changes nothing, a client never overwrites a value
 * Tangent computed (CONFLICT), a server write only fills what is missing. The rows were checked
 * before the transaction (src/modules/terms/write-terms.ts).
 */
export async function copyCrossMetrics(
  tx: Tx,
  checkpoint: { id: number; datasetId: number },
  targetKey: string,
  subset: ParameterSubset,
  rows: readonly CrossValue[],
  producer: ProducerRef,
  field = 'values',
): Promise<number> {
  // named: crossMetrics.tempTable
  await tx.query('CREATE TEMP TABLE cross_in (ord int NOT NULL, sample_id int NOT NULL, k_cross real NOT NULL) ON COMMIT DROP');
  // named: crossMetrics.copy
  await tx.copyFrom(
    'cross_in',
    ['ord', 'sample_id', 'k_cross'],
    (function* () {
      for (const [i, row] of rows.entries()) yield encodeCopyLine([i, row.sampleId, row.kCross]);
    })(),
  );
  // named: crossMetrics.foreignSample
  const [foreign] = await tx.query<{ ord: number; sample_id: number }>(
    `SELECT c.ord, c.sample_id FROM cross_in c LEFT JOIN sample s ON s.id = c.sample_id AND s.dataset_id = $1
     WHERE s.id IS NULL ORDER BY c.ord LIMIT 1`,
    [checkpoint.datasetId],
  );
  if (foreign) {
    throw new BadUserInputError(`${field}[${foreign.ord}].sampleId ${foreign.sample_id} is not a sample of this run's dataset`, `${field}[${foreign.ord}].sampleId`);
  }
  if (producer.kind === 'CLIENT') {
    // named: crossMetrics.serverValueConflict
    const [conflict] = await tx.query<{ ord: number; sample_id: number }>(
      `SELECT c.ord, c.sample_id FROM cross_in c
       JOIN sample_cross_metric t ON t.checkpoint_id = $1 AND t.target_key = $2 AND t.subset = $3 AND t.sample_id = c.sample_id
       JOIN producer p ON p.id = t.k_cross_src AND p.kind = 'SERVER'
       WHERE t.k_cross IS DISTINCT FROM c.k_cross ORDER BY c.ord LIMIT 1`,
      [checkpoint.id, targetKey, subset],
    );
    if (conflict) {
      throw new ConflictError(
        `${field}[${conflict.ord}]: sample ${conflict.sample_id} already has a kCross computed by Tangent that differs`,
        { field: `${field}[${conflict.ord}]` },
      );
    }
  }
  const update =
    producer.kind === 'SERVER'
      ? 'DO NOTHING'
      : `DO UPDATE SET k_cross = EXCLUDED.k_cross,
           k_cross_src = CASE WHEN sample_cross_metric.k_cross = EXCLUDED.k_cross THEN sample_cross_metric.k_cross_src ELSE EXCLUDED.k_cross_src END,
           updated_at = now()
         WHERE sample_cross_metric.k_cross IS DISTINCT FROM EXCLUDED.k_cross`;
  // named: crossMetrics.upsert
  const [written] = await tx.query<{ n: number }>(
    `WITH written AS (
       INSERT INTO sample_cross_metric (checkpoint_id, target_key, subset, sample_id, k_cross, k_cross_src)
       SELECT $1, $2, $4, sample_id, k_cross, $3::smallint FROM cross_in
       ON CONFLICT (checkpoint_id, target_key, subset, sample_id) ${update}
       RETURNING 1
     ) SELECT count(*)::int AS n FROM written`,
    [checkpoint.id, targetKey, producer.id, subset],
  );
  return Number(written?.n ?? 0);
}
