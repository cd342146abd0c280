import { BadUserInputError, ConflictError, invariant } from '../../platform/errors.js';
import type { ProducerKey, ProducerRef } from './producers-storage.js';
import type { Tx } from '../../platform/db/sql.js';
import { TERMS, type TermField, type TermSpec } from '../../platform/values/term.js';

/** One row of per-sample values; a term left undefined (or null) is not written. */
export type MetricValues = { sampleId: number } & { [F in TermField]?: number | boolean | ArrayLike<number> | null };

export interface CheckpointShape {
  id: number;
  datasetId: number;
  numClasses: number;
}

/** Batches at least this large get statistics on their temp table before the join (see below). */
const ANALYZE_FROM_ROWS = 10_000;

/** Rows per request of the row-wise `recordMetrics`; the columnar path takes its limit from the config. */
export const MAX_METRIC_ROWS_PER_REQUEST = 200_000;

/**
 * A column of one term. Scalars: one value per row (`null`: the row has none). Vectors (logits,
 * probs): either one flat Float32Array of n × V values, row after row (every row has a value), or
 * one entry per row (`null`: the row has none).
 */
export type ScalarColumn = ArrayLike<number | null>;
export type BoolColumn = ArrayLike<boolean | null>;
export type VectorColumn = Float32Array | Float64Array | readonly (ArrayLike<number> | null | undefined)[];

/**
 * Per-sample values in columns: row i is the sample `sampleIds[i]` (Tangent ids) or the sample at
 * position `sampleIndices[i]` of the run's dataset; exactly one of the two is given. A term absent
 * from `columns` is not touched.
 */
export interface MetricColumns {
  sampleIds?: ArrayLike<number>;
  sampleIndices?: ArrayLike<number>;
  columns: Partial<Record<TermField, ScalarColumn | BoolColumn | VectorColumn>>;
}

/** How errors name a value: `field(row, 'loss')` → e.g. `metrics[3].loss` or `input.loss[3]`. */
export type FieldNamer = (row: number, column: string) => string;

/** Row-wise input (`recordMetrics`): `metrics[3].loss`, and `metrics[3].sampleId` for the sample. */
export const rowWiseField =
  (root: string): FieldNamer =>
  (row, column) =>
    `${root}[${row}].${column === 'sampleIds' ? 'sampleId' : column}`;

export const columnField =
  (root: string): FieldNamer =>
  (row, column) =>
    `${root}.${column}[${row}]`;

const MAX_INT32 = 2_147_483_647;

function isFlat(column: VectorColumn): column is Float32Array | Float64Array {
  return column instanceof Float32Array || column instanceof Float64Array;
}

/** The number of rows, after checking that every column has one entry per row (V per row for flat vectors). */
function rowCount(batch: MetricColumns, numClasses: number, field: FieldNamer): number {
  const refs = batch.sampleIds ?? batch.sampleIndices;
  if (!refs || (batch.sampleIds && batch.sampleIndices)) {
    throw new BadUserInputError('Give the samples either as sampleIds or as sampleIndices (one per row), not both', field(0, 'sampleIds'));
  }
  const n = refs.length;
  for (const t of TERMS) {
    const column = batch.columns[t.field];
    if (column === undefined) continue;
    const expected = t.sqlType === 'real[]' && isFlat(column as VectorColumn) ? n * numClasses : n;
    if (column.length !== expected) {
      const perRow = expected === n ? 1 : numClasses;
      const unit = perRow === 1 ? 'one per row' : `V = ${numClasses} per row`;
      // Shorter: the first row left without its values; longer: the first row past the end.
      const row = Math.min(Math.floor(column.length / perRow), n);
      throw new BadUserInputError(
        `${t.field} has ${column.length} values for ${n} rows (${unit}, ${expected} in all); row ${row} is the first that does not fit`,
        field(row, t.field),
        { row },
      );
    }
  }
  return n;
}

/**
 * Checks what can be checked without the database and names the first bad row: sample references
 * (positive int32 ids or non-negative positions, each at most once), vector lengths against the
 * class count, finite float32 numbers. Returns the number of rows.
 */
export function validateMetricColumns(batch: MetricColumns, numClasses: number, field: FieldNamer): number {
  const n = rowCount(batch, numClasses, field);
  const byId = batch.sampleIds !== undefined;
  const refs = (batch.sampleIds ?? batch.sampleIndices)!;
  const refName = byId ? 'sampleId' : 'sampleIndex';
  const refColumn = byId ? 'sampleIds' : 'sampleIndices';
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const ref = refs[i]!;
    if (!Number.isInteger(ref) || ref < (byId ? 1 : 0) || ref > MAX_INT32) {
      throw new BadUserInputError(`Row ${i}: ${refName} ${ref} is not a valid ${byId ? 'sample id' : 'sample position'}`, field(i, refColumn), { row: i });
    }
    const first = seen.get(ref);
    if (first !== undefined) {
      throw new BadUserInputError(`Row ${i}: ${refName} ${ref} appears twice in the batch (first in row ${first})`, field(i, refColumn), { row: i });
    }
    seen.set(ref, i);
  }
  for (const t of TERMS) {
    const column = batch.columns[t.field];
    if (column === undefined) continue;
    if (t.sqlType === 'boolean') {
      const values = column as BoolColumn;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v !== null && v !== undefined && typeof v !== 'boolean') throw new BadUserInputError(`Row ${i}: ${t.field} must be a boolean`, field(i, t.field), { row: i });
      }
    } else if (t.sqlType === 'real') {
      const values = column as ScalarColumn;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v === null || v === undefined) continue;
        if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
          throw new BadUserInputError(`Row ${i}: ${t.field} must be a finite float32 number, got ${String(v)}`, field(i, t.field), { row: i });
        }
      }
    } else {
      const vectors = column as VectorColumn;
      if (isFlat(vectors)) {
        for (let k = 0; k < vectors.length; k++) {
          const v = vectors[k]!;
          if (!Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
            const i = Math.floor(k / numClasses);
            throw new BadUserInputError(
              `Row ${i}: ${t.field} value ${k % numClasses} of ${numClasses} must be a finite float32 number, got ${v}`,
              field(i, t.field),
              { row: i },
            );
          }
        }
      } else {
        for (let i = 0; i < n; i++) {
          const v = vectors[i];
          if (v === null || v === undefined) continue;
          if (v.length !== numClasses) {
            throw new BadUserInputError(`Row ${i}: ${t.field} has ${v.length} values; the model has ${numClasses} classes`, field(i, t.field), { row: i });
          }
          for (let k = 0; k < v.length; k++) {
            // A finite float64 beyond float32's range would be stored as Infinity.
            if (!Number.isFinite(v[k]) || !Number.isFinite(Math.fround(v[k]!))) {
              throw new BadUserInputError(`Row ${i}: ${t.field} value ${k} of ${numClasses} must be a finite float32 number, got ${v[k]}`, field(i, t.field), { row: i });
            }
          }
        }
      }
    }
  }
  return n;
}

/** Row-wise values as columns, so that both mutations share one writer. */
export function rowsToColumns(rows: readonly MetricValues[]): MetricColumns {
  const sampleIds = new Float64Array(rows.length);
  const columns: MetricColumns['columns'] = {};
  for (const t of TERMS) {
    if (!rows.some((row) => row[t.field] !== undefined && row[t.field] !== null)) continue;
    columns[t.field] = rows.map((row) => (row[t.field] ?? null) as never);
  }
  rows.forEach((row, i) => (sampleIds[i] = row.sampleId));
  return { sampleIds, columns };
}

/** Checks rows the way `writeMetrics` does; names the first bad one as `metrics[i].<term>`. */
export function validateMetricRows(rows: readonly MetricValues[], numClasses: number, field = 'metrics'): void {
  validateMetricColumns(rowsToColumns(rows), numClasses, rowWiseField(field));
}

/**
 * A float32 value as COPY text: 9 significant digits always round-trip a float32 (FLT_DECIMAL_DIG),
 * and `toPrecision(9)` is both faster and about 40% shorter than `String()`'s 17 digits, which
 * PostgreSQL then also parses faster. Only for values that are float32 already: a float64 would be
 * rounded twice (to 9 digits, then to float32) and could land one ulp off.
 */
export function formatFloat32(value: number): string {
  // Both forms print negative zero as "0"; keep its sign so that values read back bit for bit.
  return value === 0 && Object.is(value, -0) ? '-0' : value.toPrecision(9);
}

/**
 * A float64 value as COPY text of the float32 nearest to it. Rounded here, not by PostgreSQL: its real
 * input refuses a value that rounds to zero (1e-50: "out of range for type real"), where float32
 * rounding gives 0, as it gives a subnormal for 1e-40.
 */
function formatFloat64(value: number): string {
  return formatFloat32(Math.fround(value));
}

/** Encodes one COPY text line of the temp table from column values (hand-rolled: it is the hot loop). */
function lineEncoder(batch: MetricColumns, terms: readonly TermSpec[], numClasses: number): (row: number) => string {
  const refs = (batch.sampleIds ?? batch.sampleIndices)!;
  const encoders = terms.map((t) => {
    const column = batch.columns[t.field]!;
    if (t.sqlType === 'real[]' && isFlat(column as VectorColumn)) {
      const flat = column as Float32Array | Float64Array;
      const format = flat instanceof Float32Array ? formatFloat32 : formatFloat64;
      return (row: number) => {
        let out = '{';
        const start = row * numClasses;
        for (let k = 0; k < numClasses; k++) out += (k ? ',' : '') + format(flat[start + k]!);
        return `${out}}`;
      };
    }
    if (t.sqlType === 'real' && column instanceof Float32Array) return (row: number) => formatFloat32(column[row]!);
    if (t.sqlType === 'real' && column instanceof Float64Array) return (row: number) => formatFloat64(column[row]!);
    if (t.sqlType === 'boolean') {
      const values = column as BoolColumn;
      return (row: number) => (values[row] === null || values[row] === undefined ? '\\N' : values[row] ? 't' : 'f');
    }
    if (t.sqlType === 'real') {
      const values = column as ScalarColumn;
      return (row: number) => (values[row] === null || values[row] === undefined ? '\\N' : formatFloat64(values[row]!));
    }
    const vectors = column as readonly (ArrayLike<number> | null | undefined)[];
    return (row: number) => {
      const v = vectors[row];
      if (v === null || v === undefined) return '\\N';
      let out = '{';
      for (let k = 0; k < v.length; k++) out += (k ? ',' : '') + formatFloat64(v[k]!);
      return `${out}}`;
    };
  });
  return (row) => {
    let line = `${row}\t${refs[row]}`;
    for (const encode of encoders) line += `\t${encode(row)}`;
    return `${line}\n`;
  };
}

/** Lines of the batch, in chunks of many rows (one string per chunk keeps the stream cheap). */
function* copyChunks(n: number, encode: (row: number) => string, rowsPerChunk = 512): Generator<string> {
  for (let start = 0; start < n; start += rowsPerChunk) {
    let chunk = '';
    const end = Math.min(n, start + rowsPerChunk);
    for (let row = start; row < end; row++) chunk += encode(row);
    yield chunk;
  }
}

/**
 * Writes per-sample values at a checkpoint inside `tx` (the caller's transaction, so a batch lands
 * whole or not at all): COPY into a temporary table, then one INSERT … ON CONFLICT that joins each
 * row to its sample in the run's dataset. Sending a batch twice leaves the same table. Values are
 * marked with `producer`. A client never silently overwrites a value Tangent computed: a differing
 * value is refused (CONFLICT) naming the row; a server write only fills what is missing, so it never
 * overwrites anything recorded. When the INSERT writes fewer rows than it was given, one diagnostic
 * query names the first bad row (and the caller's transaction rolls back). `n` is the batch's
 * row count as validateMetricColumns returned it (the batch is checked before the transaction).
 */
export async function copyMetricColumns(tx: Tx, checkpoint: CheckpointShape, batch: MetricColumns, n: number, producer: ProducerRef, field: FieldNamer): Promise<number> {
  const terms = TERMS.filter((t) => batch.columns[t.field] !== undefined);
  const byId = batch.sampleIds !== undefined;
  const encode = lineEncoder(batch, terms, checkpoint.numClasses);
  // named: metrics.tempTable
  await tx.query(`CREATE TEMP TABLE metric_in (ord int NOT NULL, ref int NOT NULL${terms.map((t) => `, ${t.column} ${t.sqlType}`).join('')}) ON COMMIT DROP`);
  // named: metrics.copy
  await tx.copyFrom('metric_in', ['ord', 'ref', ...terms.map((t) => t.column)], copyChunks(n, encode));
  // A temp table has no statistics: without them the planner hashes the dataset's every sample
  // (a million for a large one) to join a batch; with them it probes the batch's samples only.
  // Measured at 100k rows into a 1M-sample dataset: ANALYZE ~85 ms, the join 300 ms faster.
  // named: metrics.analyze
  if (n >= ANALYZE_FROM_ROWS) await tx.query('ANALYZE metric_in');
  const written = await upsert(tx, checkpoint, terms, producer.id, producer.kind, byId);
  if (written !== n) {
    await explainShortfall(tx, checkpoint, terms, byId, field);
    invariant(false, `metrics upsert wrote ${written} of ${n} rows but no row is to blame`);
  }
  return written;
}

/** Joins a temp-table row (`m`) to its sample (`s`) of the dataset ($3): by id or by position. */
const joinSample = (byId: boolean) => (byId ? 's.id = m.ref AND s.dataset_id = $3' : 's.dataset_id = $3 AND s.index = m.ref');

/** The server producers, as an array the row checks compare `*_src` against. */
const SERVER_SOURCES = `ARRAY(SELECT id FROM producer WHERE kind = 'SERVER')::smallint[]`;

/** SQL true when writing `incoming` over `stored` would change a value Tangent computed. */
function serverValueChanged(terms: readonly TermSpec[], incoming: string, stored: string): string {
  return terms
    // COALESCE: a NULL source compares as unknown, and NOT (unknown) would skip a harmless row.
    .map((t) => `COALESCE(${incoming}.${t.column} IS NOT NULL AND ${stored}.${t.column}_src = ANY(${SERVER_SOURCES}) AND ${incoming}.${t.column} IS DISTINCT FROM ${stored}.${t.column}, false)`)
    .join(' OR ');
}

async function upsert(tx: Tx, checkpoint: CheckpointShape, terms: readonly TermSpec[], src: number, kind: ProducerKey['kind'], byId: boolean): Promise<number> {
  const columns = terms.flatMap((t) => [t.column, `${t.column}_src`]);
  const selected = terms.flatMap((t) => [`m.${t.column}`, `CASE WHEN m.${t.column} IS NULL THEN NULL ELSE $2::smallint END`]);
  const updates = terms.flatMap((t) => {
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
  // Rows go in sample order, so concurrent batches that overlap lock their rows in the same order
  // rather than deadlocking. A client row that would change a computed value is skipped here (and
  // the batch refused below).
  const guard = kind === 'CLIENT' && terms.length > 0 ? `WHERE NOT (${serverValueChanged(terms, 'EXCLUDED', 'sample_metric')})` : '';
  const set = [...updates, 'updated_at = now()'].join(', ');
  // named: metrics.upsert
  const result = await tx.query<{ n: number }>(
    `WITH written AS (
       INSERT INTO sample_metric (checkpoint_id, sample_id${columns.map((c) => `, ${c}`).join('')})
       SELECT $1, s.id${selected.map((c) => `, ${c}`).join('')}
       FROM metric_in m JOIN sample s ON ${joinSample(byId)}
       ORDER BY s.id
       ON CONFLICT (checkpoint_id, sample_id) DO UPDATE SET ${set} ${guard}
       RETURNING 1
     ) SELECT count(*)::int AS n FROM written`,
    [checkpoint.id, src, checkpoint.datasetId],
  );
  return Number(result[0]!.n);
}

/** Names the first row the upsert left out: a sample not in the dataset, or a computed value it would change. */
async function explainShortfall(tx: Tx, checkpoint: CheckpointShape, terms: readonly TermSpec[], byId: boolean, field: FieldNamer): Promise<void> {
  // named: metrics.foreignSample
  const bad = await tx.query<{ ord: number; ref: number }>(
    `SELECT m.ord, m.ref FROM metric_in m LEFT JOIN sample s ON ${joinSample(byId).replaceAll('$3', '$1')}
     WHERE s.id IS NULL ORDER BY m.ord LIMIT 1`,
    [checkpoint.datasetId],
  );
  if (bad[0]) {
    const row = Number(bad[0].ord);
    const what = byId ? `sampleId ${bad[0].ref} is not a sample of this run's dataset` : `sampleIndex ${bad[0].ref} is not a position in this run's dataset`;
    throw new BadUserInputError(`Row ${row}: ${what}`, field(row, byId ? 'sampleIds' : 'sampleIndices'), { row });
  }
  // named: metrics.serverValueConflict
  const conflict = await tx.query<{ ord: number; sample_id: number }>(
    `SELECT m.ord, s.id AS sample_id FROM metric_in m
     JOIN sample s ON ${joinSample(byId).replaceAll('$3', '$2')}
     JOIN sample_metric t ON t.checkpoint_id = $1 AND t.sample_id = s.id
     WHERE ${serverValueChanged(terms, 'm', 't')} ORDER BY m.ord LIMIT 1`,
    [checkpoint.id, checkpoint.datasetId],
  );
  if (conflict[0]) {
    const row = Number(conflict[0].ord);
    throw new ConflictError(
      `Row ${row}: sample ${conflict[0].sample_id} already has a value computed by Tangent that differs; delete the computed terms first to replace them`,
      { field: field(row, byId ? 'sampleIds' : 'sampleIndices'), row },
    );
  }
}
