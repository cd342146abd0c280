import { BadUserInputError } from '../errors.js';
import { float32ToBytes } from '../float32.js';
import { encodeCopyLine } from './copy-text.js';
import type { Tx } from './sql.js';

export interface NewSample {
  index: number;
  label: number;
  split: string;
  series: Float32Array;
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
    for (const s of samples) yield encodeCopyLine([datasetId, s.index, s.label, s.split, float32ToBytes(s.series)]);
  })();
  return tx.copyFrom('sample', ['dataset_id', 'index', 'label', 'split', 'series'], lines);
}
