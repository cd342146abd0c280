import { BadUserInputError } from '../../platform/errors.js';
import type { ParameterSubset } from '../../platform/values/parameter-subset.js';
import { checkSubset } from '../terms/subsets.js';
import { checkpointInfo, type CurationContext } from './checkpoint-info.js';
import type { SampleFilter } from './query.js';
import { scalarTerm, type ScalarTermName } from './term-columns.js';
import { termColumnsRaw } from './term-columns-read-storage.js';

/**
 * `Checkpoint.termColumns`: every sample of a checkpoint's dataset (or those a filter keeps), in
 * dataset order, with some scalar terms, as little-endian binary columns read by one statement. It
 * is the read for clients that draw every sample (the Explorer's loss/kNorm scatter and its map at
 * 100,000 samples): about 13 + 4·terms bytes per sample before base64, against ~230 bytes per
 * sample of the JSONL export, and no row objects built on either side.
 *
 * It reads what is stored and computes nothing: a value not computed (yet) is NaN in its column and
 * counted in `missing`, so a client can say "pending" instead of drawing a zero. Filter conditions
 * on a term keep only samples that have it, as everywhere in curation.
 */

export interface TermColumnsResult {
  checkpointId: number;
  subset: string;
  count: number;
  sampleIds: Uint8Array;
  indices: Uint8Array;
  labels: Uint8Array;
  splits: string[];
  splitCodes: Uint8Array;
  correct: Uint8Array;
  correctMissing: number;
  columns: { term: ScalarTermName; values: Uint8Array; missing: number }[];
}

export async function termColumns(
  ctx: CurationContext,
  checkpointId: number,
  o: { terms: readonly ScalarTermName[]; subset: ParameterSubset; filter: SampleFilter },
): Promise<TermColumnsResult> {
  const terms = [...new Set(o.terms)];
  if (terms.length === 0) throw new BadUserInputError('Name at least one term', 'terms');
  for (const term of terms) {
    if (scalarTerm(term).cross) {
      throw new BadUserInputError('kCross is measured against a target set, which termColumns does not take: read it with rankedSamples or exportUrl and `target`', 'terms');
    }
  }
  if ((o.filter.terms ?? []).some((r) => scalarTerm(r.term).cross)) throw new BadUserInputError('termColumns filters on no kCross (it takes no target set)', 'filter.terms');
  const info = await checkpointInfo(ctx, checkpointId);
  await checkSubset(ctx, checkpointId, o.subset);
  const raw = await termColumnsRaw(ctx.db.sql, { checkpointId, datasetId: info.datasetId, terms, subset: o.subset, filter: o.filter });
  // One byte per split code: a dataset with more than 256 splits would need a wider column.
  if (raw.splits.length > 256) throw new BadUserInputError(`The samples have ${raw.splits.length} splits, more than termColumns encodes (256): filter by split`, 'filter.splits');
  return {
    checkpointId,
    subset: o.subset,
    count: raw.count,
    sampleIds: raw.sampleIds,
    indices: raw.indices,
    labels: raw.labels,
    splits: raw.splits,
    splitCodes: raw.splitCodes,
    correct: raw.correct,
    correctMissing: raw.correctMissing,
    columns: terms.map((term, i) => ({ term, values: raw.terms[i]!.values, missing: raw.terms[i]!.missing })),
  };
}
