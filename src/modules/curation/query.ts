import { createHash } from 'node:crypto';
import { scalarTerm, type RequiredTerm, type ScalarTermName, type TargetSet } from './term-columns.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError } from '../../platform/errors.js';

export type Direction = 'ASC' | 'DESC';

/** An inclusive range on a term; bounds compare in float32, the precision the values are stored in. */
export interface TermRange {
  term: ScalarTermName;
  min?: number | null;
  max?: number | null;
}

/** Which samples a curation query considers; every condition must hold. */
export interface SampleFilter {
  terms?: readonly TermRange[] | null;
  labels?: readonly number[] | null;
  splits?: readonly string[] | null;
  correct?: boolean | null;
  sampleIds?: readonly number[] | null;
}

/** The part of a filter that does not depend on any term: the samples a query is about. */
export interface SampleScope {
  datasetId: number;
  labels?: readonly number[] | null;
  splits?: readonly string[] | null;
  sampleIds?: readonly number[] | null;
}

/**
 * A curation query at a checkpoint: which samples, in which order, kCross against which target set,
 * and the parameter subset its kernel terms (kNorm, kTrace, kCross) are over ('all' by default).
 */
export interface SampleQuery {
  filter: SampleFilter;
  order: { term: ScalarTermName; direction: Direction };
  target: TargetSet | null;
  /** Default 'all' (`querySubset`). */
  subset?: ParameterSubset;
}

/** What a statement needs: the checkpoint, the query, the target key and the cursor list name. */
export interface BoundQuery {
  checkpointId: number;
  query: SampleQuery;
  targetKey: string | null;
  /** Cursor list name: the checkpoint and a digest of the query's shape. */
  list: string;
}

/** The parameter subset of a query's kernel terms. */
export function querySubset(query: SampleQuery): ParameterSubset {
  return query.subset ?? ALL_PARAMETERS;
}

/** The samples a filter is about, whatever their terms. */
export function scopeOf(datasetId: number, filter: SampleFilter): SampleScope {
  return { datasetId, labels: filter.labels ?? null, splits: filter.splits ?? null, sampleIds: filter.sampleIds ?? null };
}

/**
 * Every term a query reads: the ones it ranks or summarises by and the ones its filter names, each
 * with the query's parameter subset (kernel terms are over it; the others are computed alongside K
 * over it). kCross without a target set is refused here, naming the argument.
 */
export function requiredTerms(terms: readonly ScalarTermName[], filter: SampleFilter, targetKey: string | null, subset: ParameterSubset = ALL_PARAMETERS): RequiredTerm[] {
  const all: ScalarTermName[] = [...terms, ...(filter.terms ?? []).map((r) => r.term)];
  if (all.some((t) => scalarTerm(t).cross) && targetKey === null) {
    throw new BadUserInputError('kCross is measured against a target set: give `target` (a split or a saved selection)', 'target');
  }
  const over = subset === ALL_PARAMETERS ? {} : { subset };
  const required: RequiredTerm[] = all.map((term) => (scalarTerm(term).cross ? { term, targetKey, ...over } : { term, ...over }));
  if (filter.correct !== null && filter.correct !== undefined) required.push({ term: 'CORRECT', ...over });
  return required;
}

/** A short digest of a query's shape, so a cursor issued for one query is refused by another. */
export function queryDigest(parts: unknown): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 12);
}
