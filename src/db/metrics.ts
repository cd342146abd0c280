import { BadUserInputError, ConflictError } from '../errors.js';
import { encodeCopyLine, type CopyValue } from './copy-text.js';
import type { Database } from './database.js';
import { producerId, type ProducerKey } from './producers.js';
import type { Tx } from './sql.js';
import { TERMS, type TermField } from './terms.js';

/** One row of per-sample values; a term left undefined (or null) is not written. */
export type MetricValues = { sampleId: number } & { [F in TermField]?: number | boolean | ArrayLike<number> | null };

export interface CheckpointShape {
  id: number;
  datasetId: number;
  numClasses: number;
}

/** Rows per statement batch; one request may carry many. */
export const MAX_METRIC_ROWS_PER_REQUEST = 200_000;

const INPUT_COLUMNS = ['ord', 'sample_id', ...TERMS.map((t) => t.column)];

/**
 * Checks what can be checked without the database: vector lengths against the class count,
 * finiteness, repeated samples. Names the first bad row.
 */
export function validateMetricRows(rows: readonly MetricValues[], numClasses: number, field = 'metrics'): void {
  const seen = new Set<number>();
  for (const [i, row] of rows.entries()) {
    if (seen.has(row.sampleId)) throw new BadUserInputError(`${field}[${i}].sampleId ${row.sampleId} appears twice in the batch`, `${field}[${i}].sampleId`);
    seen.add(row.sampleId);
    for (const t of TERMS) {
      const v = row[t.field];
      if (v === undefined || v === null) continue;
      if (t.sqlType === 'real[]') {
        const arr = v as ArrayLike<number>;
        if (arr.length !== numClasses) {
          throw new BadUserInputError(`${field}[${i}].${t.field} has ${arr.length} values; the model has ${numClasses} classes`, `${field}[${i}].${t.field}`);
        }
      } else if (t.sqlType === 'real') {
        const x = v as number;
        if (!Number.isFinite(x) || !Number.isFinite(Math.fround(x))) {
          throw new BadUserInputError(`${field}[${i}].${t.field} must be a finite float32 number`, `${field}[${i}].${t.field}`);
        }
      }
    }
  }
}

/**
 * Writes per-sample values at a checkpoint in one transaction, through COPY into a temporary table
 * and one INSERT … ON CONFLICT, so a batch lands whole or not at all and sending it twice changes
 * nothing. Values are marked with `producer`. A client never silently overwrites a value Tangent
 * computed: a differing value is refused (CONFLICT) naming the row; a server write only fills what
 * is missing, so it never overwrites anything recorded.
 */
export async function writeMetrics(
  db: Database,
  checkpoint: CheckpointShape,
  rows: readonly MetricValues[],
  producer: ProducerKey,
  field = 'metrics',
): Promise<number> {
  validateMetricRows(rows, checkpoint.numClasses, field);
  if (rows.length === 0) return 0;
  const src = await producerId(db, producer);
  return db.transaction(async (tx) => {
    await tx.query(
      `CREATE TEMP TABLE metric_in (ord int NOT NULL, sample_id int NOT NULL, ${TERMS.map((t) => `${t.column} ${t.sqlType}`).join(', ')}) ON COMMIT DROP`,
    );
    await tx.copyFrom(
      'metric_in',
      INPUT_COLUMNS,
      (function* () {
        for (const [i, row] of rows.entries()) {
          yield encodeCopyLine([i, row.sampleId, ...TERMS.map((t) => row[t.field] as CopyValue)]);
        }
      })(),
    );
    await checkSamplesBelong(tx, checkpoint.datasetId, field);
    if (producer.kind === 'CLIENT') await checkNoServerValueChanged(tx, checkpoint.id, field);
    return upsert(tx, checkpoint.id, src, producer.kind);
  });
}

async function checkSamplesBelong(tx: Tx, datasetId: number, field: string): Promise<void> {
  // named: metrics.foreignSample
  const bad = await tx.query<{ ord: number; sample_id: number }>(
    `SELECT m.ord, m.sample_id FROM metric_in m
     LEFT JOIN sample s ON s.id = m.sample_id AND s.dataset_id = $1
     WHERE s.id IS NULL ORDER BY m.ord LIMIT 1`,
    [datasetId],
  );
  if (bad[0]) {
    const { ord, sample_id } = bad[0];
    throw new BadUserInputError(`${field}[${ord}].sampleId ${sample_id} is not a sample of this run's dataset`, `${field}[${ord}].sampleId`);
  }
}

async function checkNoServerValueChanged(tx: Tx, checkpointId: number, field: string): Promise<void> {
  const differs = TERMS.map(
    (t) => `(m.${t.column} IS NOT NULL AND t.${t.column}_src IN (SELECT id FROM producer WHERE kind = 'SERVER') AND m.${t.column} IS DISTINCT FROM t.${t.column})`,
  ).join(' OR ');
  // named: metrics.serverValueConflict
  const bad = await tx.query<{ ord: number; sample_id: number }>(
    `SELECT m.ord, m.sample_id FROM metric_in m
     JOIN sample_metric t ON t.checkpoint_id = $1 AND t.sample_id = m.sample_id
     WHERE ${differs} ORDER BY m.ord LIMIT 1`,
    [checkpointId],
  );
  if (bad[0]) {
    const { ord, sample_id } = bad[0];
    throw new ConflictError(
      `${field}[${ord}]: sample ${sample_id} already has a value computed by Tangent that differs; delete the computed terms first to replace them`,
      { field: `${field}[${ord}]` },
    );
  }
}

async function upsert(tx: Tx, checkpointId: number, src: number, kind: ProducerKey['kind']): Promise<number> {
  const columns = TERMS.flatMap((t) => [t.column, `${t.column}_src`]);
  const selected = TERMS.flatMap((t) => [t.column, `CASE WHEN ${t.column} IS NULL THEN NULL ELSE $2::smallint END`]);
  const updates = TERMS.flatMap((t) => {
    const c = t.column;
    if (kind === 'SERVER') {
      // Fill only what is missing: a stored value, recorded or computed, stays as it is.
      return [
        `${c} = COALESCE(sample_metric.${c}, EXCLUDED.${c})`,
        `${c}_src = CASE WHEN sample_metric.${c} IS NULL THEN EXCLUDED.${c}_src ELSE sample_metric.${c}_src END`,
      ];
    }
    // A client value replaces a client value; an equal value keeps its original producer.
    return [
      `${c} = COALESCE(EXCLUDED.${c}, sample_metric.${c})`,
      `${c}_src = CASE WHEN EXCLUDED.${c} IS NULL OR EXCLUDED.${c} IS NOT DISTINCT FROM sample_metric.${c} THEN sample_metric.${c}_src ELSE EXCLUDED.${c}_src END`,
    ];
  });
  // named: metrics.upsert
  const result = await tx.query<{ n: number }>(
    `WITH written AS (
       INSERT INTO sample_metric (checkpoint_id, sample_id, ${columns.join(', ')})
       SELECT $1, sample_id, ${selected.join(', ')} FROM metric_in
       ON CONFLICT (checkpoint_id, sample_id) DO UPDATE SET ${updates.join(', ')}, updated_at = now()
       RETURNING 1
     ) SELECT count(*)::int AS n FROM written`,
    [checkpointId, src],
  );
  return Number(result[0]!.n);
}
