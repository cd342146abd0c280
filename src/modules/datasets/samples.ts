import { BadUserInputError } from '../../platform/errors.js';

export interface NewSample {
  index: number;
  label: number;
  split: string;
  series: Float32Array;
  /** The series' length in its source before a length policy brought it to the dataset's (null: as given). */
  originalLength?: number | null;
}

export interface DatasetShape {
  id: number;
  length: number;
  channels: number;
  classNames: string[];
}

/**
 * Checks a batch against its dataset without the database and names the first bad sample: series of
 * the wrong length, a label outside the class list, an index repeated in the batch. (Whether an index
 * is already stored is the database's to say: validateSamples in service.ts.)
 */
export function checkSamples(dataset: DatasetShape, samples: readonly NewSample[], field: string): void {
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

