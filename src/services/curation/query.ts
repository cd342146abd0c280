import { createHash } from 'node:crypto';
import type { Direction, SampleFilter, SampleScope } from '../../db/curation-sql.js';
import { scalarTerm, type RequiredTerm, type ScalarTermName, type TargetSet } from '../../db/curation-terms.js';
import { BadUserInputError } from '../../errors.js';

/** A curation query at a checkpoint: which samples, in which order, kCross against which target set. */
export interface SampleQuery {
  filter: SampleFilter;
  order: { term: ScalarTermName; direction: Direction };
  target: TargetSet | null;
}

/** The samples a filter is about, whatever their terms. */
export function scopeOf(datasetId: number, filter: SampleFilter): SampleScope {
  return { datasetId, labels: filter.labels ?? null, splits: filter.splits ?? null, sampleIds: filter.sampleIds ?? null };
}

/**
 * Every term a query reads: the ones it ranks or summarises by and the ones its filter names.
 * kCross without a target set is refused here, naming the argument.
 */
export function requiredTerms(terms: readonly ScalarTermName[], filter: SampleFilter, targetKey: string | null): RequiredTerm[] {
  const all: ScalarTermName[] = [...terms, ...(filter.terms ?? []).map((r) => r.term)];
  if (all.some((t) => scalarTerm(t).cross) && targetKey === null) {
    throw new BadUserInputError('kCross is measured against a target set: give `target` (a split or a saved selection)', 'target');
  }
  const required: RequiredTerm[] = all.map((term) => (scalarTerm(term).cross ? { term, targetKey } : { term }));
  if (filter.correct !== null && filter.correct !== undefined) required.push({ term: 'CORRECT' });
  return required;
}

/** A short digest of a query's shape, so a cursor issued for one query is refused by another. */
export function queryDigest(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 12);
}
