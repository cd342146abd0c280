import { BadUserInputError, ConflictError } from '../../platform/errors.js';
import { float32ToBytes } from '../../platform/float32.js';
import { encodeCopyLine } from '../../platform/db/copy-text.js';
import type { Tx } from '../../platform/db/sql.js';

export interface NewSample {
  index: number;
  label: number;
  split: string;
  series: Float32Array;
  /** The series' length in its source before a length policy brought it to the dataset's (null: as given). */
  originalLength?: number | null;
}

interface DatasetShape {
  id: number;
  length: number;
  channels: number;
  classNames: string[];
}

/**
 * Checks a batch against its dataset and names the first bad sample: series of the wrong length,
 * a label outside the class list, an index repeated in the batch or already stored.
 */
export async function validateSamples(tx: Tx, dataset: DatasetShape, samples: readonly NewSample[], field = 'samples'): Promise<void> {
  const values = dataset.length * dataset.channels;
  const seen = new Set<number>();
  for (const [i, s] of samples.entries()) {
    if (s.series.length !== values) {
      throw new BadUserInputError(
        `${field}[${i}].series has ${s.series.length} values; the dataset's samples have length × channels = ${dataset.length} × ${dataset.channels} = ${values}`,
        `${field}[${i}].series`,
      );
    }
    if (s.label >= dataset.classNames.length) {
      throw new BadUserInputError(
        `${field}[${i}].label ${s.label} is not a class of this dataset (it has ${dataset.classNames.length})`,
        `${field}[${i}].label`,
      );
    }
    if (seen.has(s.index)) throw new BadUserInputError(`${field}[${i}].index ${s.index} appears twice in the batch`, `${field}[${i}].index`);
    seen.add(s.index);
  }
  if (samples.length === 0) return;
  // named: sample.existingIndex
  const taken = await tx.query<{ index: number }>(
    'SELECT index FROM sample WHERE dataset_id = $1 AND index = ANY($2::int[]) ORDER BY index LIMIT 1',
    [dataset.id, samples.map((s) => s.index)],
  );
  if (taken.length > 0) {
    const index = Number(taken[0]!.index);
    const i = samples.findIndex((s) => s.index === index);
    throw new BadUserInputError(`${field}[${i}].index ${index} already exists in the dataset`, `${field}[${i}].index`);
  }
}

/** Inserts validated samples with COPY, inside the caller's transaction. */
export async function insertSamples(tx: Tx, datasetId: number, samples: readonly NewSample[]): Promise<number> {
  if (samples.length === 0) return 0;
  const lines = (function* () {
    for (const s of samples) yield encodeCopyLine([datasetId, s.index, s.label, s.split, float32ToBytes(s.series), s.originalLength ?? null]);
  })();
  return tx.copyFrom('sample', ['dataset_id', 'index', 'label', 'split', 'series', 'original_length'], lines);
}

/**
 * Samples in columns: sample i has position `indices[i]`, class `labels[i]`, split `splits[i]` (or
 * `splits` for all), and the series `series[i·L·C … (i+1)·L·C)`, time-major.
 */
export interface SampleColumns {
  indices: ArrayLike<number>;
  labels: ArrayLike<number>;
  splits: readonly string[] | string;
  series: Float32Array;
  /** Each sample's length in its source before a length policy (Sample.originalLength); absent: stored as given. */
  originalLengths?: ArrayLike<number> | null;
}

/** How errors name a value: `field(row, 'labels')` → e.g. `input.labels[3]`. */
export type SampleFieldNamer = (row: number, column: string) => string;

const MAX_INT32 = 2_147_483_647;
const MAX_SPLIT_LENGTH = 64;

/**
 * Checks a columnar batch against its dataset without the database and names the first bad row:
 * column lengths, positions (non-negative int32, each once), labels within the class list, splits,
 * finite series values. Returns the number of rows.
 */
export function validateSampleColumns(dataset: DatasetShape, batch: SampleColumns, field: SampleFieldNamer): number {
  const n = batch.indices.length;
  const values = dataset.length * dataset.channels;
  const fit = (column: string, length: number, perRow: number) => {
    if (length === n * perRow) return;
    const row = Math.min(Math.floor(length / perRow), n);
    throw new BadUserInputError(
      `${column} has ${length} values for ${n} rows (${perRow === 1 ? 'one per row' : `length × channels = ${values} per row`}); row ${row} is the first that does not fit`,
      field(row, column),
      { row },
    );
  };
  fit('labels', batch.labels.length, 1);
  if (typeof batch.splits !== 'string') fit('splits', batch.splits.length, 1);
  fit('series', batch.series.length, values);
  if (batch.originalLengths) fit('originalLengths', batch.originalLengths.length, 1);
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const index = batch.indices[i]!;
    if (!Number.isInteger(index) || index < 0 || index > MAX_INT32) {
      throw new BadUserInputError(`Row ${i}: index ${index} must be a non-negative 32-bit integer`, field(i, 'indices'), { row: i });
    }
    const first = seen.get(index);
    if (first !== undefined) throw new BadUserInputError(`Row ${i}: index ${index} appears twice in the batch (first in row ${first})`, field(i, 'indices'), { row: i });
    seen.set(index, i);
    const label = batch.labels[i]!;
    if (!Number.isInteger(label) || label < 0 || label >= dataset.classNames.length) {
      throw new BadUserInputError(
        `Row ${i}: label ${label} is not a class of this dataset (it has ${dataset.classNames.length}: 0…${dataset.classNames.length - 1})`,
        field(i, 'labels'),
        { row: i },
      );
    }
    const originalLength = batch.originalLengths?.[i];
    if (originalLength !== undefined && (!Number.isInteger(originalLength) || originalLength < 1)) {
      throw new BadUserInputError(`Row ${i}: originalLength ${originalLength} must be a positive integer`, field(i, 'originalLengths'), { row: i });
    }
    const split = typeof batch.splits === 'string' ? batch.splits : batch.splits[i]!;
    if (i === 0 || typeof batch.splits !== 'string') {
      if (split.trim() !== split || split.length === 0 || split.length > MAX_SPLIT_LENGTH) {
        throw new BadUserInputError(`Row ${i}: a split is 1 to ${MAX_SPLIT_LENGTH} characters without surrounding spaces`, field(i, 'splits'), { row: i });
      }
    }
  }
  const series = batch.series;
  for (let k = 0; k < series.length; k++) {
    if (!Number.isFinite(series[k]!)) {
      const i = Math.floor(k / values);
      throw new BadUserInputError(`Row ${i}: series value ${k % values} is ${series[k]}; series hold finite numbers only`, field(i, 'series'), { row: i });
    }
  }
  return n;
}

/**
 * Writes a columnar batch of samples inside the caller's transaction: COPY into a temporary table,
 * then one INSERT … ON CONFLICT DO NOTHING. A sample already stored identically (same position,
 * label, split, series bytes and original length) is left as it is, so sending a batch twice is
 * harmless; one that differs is refused (CONFLICT) naming the row, since metrics may already
 * describe the stored one.
 * The comparison runs after the insert, so two concurrent batches cannot both miss each other.
 */
export async function upsertSamples(
  tx: Tx,
  dataset: DatasetShape,
  batch: SampleColumns,
  field: SampleFieldNamer,
): Promise<{ added: number; unchanged: number }> {
  const n = validateSampleColumns(dataset, batch, field);
  if (n === 0) return { added: 0, unchanged: 0 };
  const values = dataset.length * dataset.channels;
  const bytes = float32ToBytes(batch.series);
  const rowBytes = values * 4;
  const splitOf = typeof batch.splits === 'string' ? () => batch.splits as string : (i: number) => (batch.splits as readonly string[])[i]!;
  const originalOf = (i: number) => batch.originalLengths?.[i] ?? null;
  await tx.query(
    'CREATE TEMP TABLE sample_in (ord int NOT NULL, index int NOT NULL, label int NOT NULL, split text NOT NULL, series bytea NOT NULL, original_length int) ON COMMIT DROP',
  );
  await tx.copyFrom(
    'sample_in',
    ['ord', 'index', 'label', 'split', 'series', 'original_length'],
    (function* () {
      const rowsPerChunk = Math.max(1, Math.floor(1_048_576 / (rowBytes * 2 + 32)));
      for (let start = 0; start < n; start += rowsPerChunk) {
        let chunk = '';
        for (let i = start; i < Math.min(n, start + rowsPerChunk); i++) {
          chunk += encodeCopyLine([i, batch.indices[i]!, batch.labels[i]!, splitOf(i), bytes.subarray(i * rowBytes, (i + 1) * rowBytes), originalOf(i)]);
        }
        yield chunk;
      }
    })(),
  );
  // In index order, so that concurrent batches that overlap take their row locks in one order.
  // named: sample.upsert
  const [inserted] = await tx.query<{ n: number }>(
    `WITH added AS (
       INSERT INTO sample (dataset_id, index, label, split, series, original_length)
       SELECT $1, index, label, split, series, original_length FROM sample_in ORDER BY index
       ON CONFLICT (dataset_id, index) DO NOTHING
       RETURNING 1
     ) SELECT count(*)::int AS n FROM added`,
    [dataset.id],
  );
  const added = Number(inserted!.n);
  if (added < n) {
    // named: sample.differingExisting
    const differs = await tx.query<{ ord: number; index: number }>(
      `SELECT m.ord, m.index FROM sample_in m JOIN sample s ON s.dataset_id = $1 AND s.index = m.index
       WHERE (s.label, s.split, s.series, s.original_length) IS DISTINCT FROM (m.label, m.split, m.series, m.original_length)
       ORDER BY m.ord LIMIT 1`,
      [dataset.id],
    );
    if (differs[0]) {
      const row = Number(differs[0].ord);
      throw new ConflictError(
        `Row ${row}: the dataset already has a different sample at index ${differs[0].index}; samples are never replaced (metrics may describe the stored one)`,
        { field: field(row, 'indices'), row },
      );
    }
  }
  return { added, unchanged: n - added };
}
