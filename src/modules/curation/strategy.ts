import { z } from 'zod';
import type { Direction, SampleFilter } from './query.js';
import { SCALAR_TERM_NAMES as TERM_NAMES, type ScalarTermName } from './term-columns.js';
import { ALL_PARAMETERS, storedParameterSubset, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, invariant } from '../../platform/errors.js';

export const SELECTION_METHODS = ['TOP_K', 'TOP_FRACTION', 'THRESHOLD', 'BALANCED_TOP_K', 'STRATIFIED'] as const;
export type SelectionMethod = (typeof SELECTION_METHODS)[number];
export type Weighting = 'EQUAL' | 'LEARNING_RATE' | 'CUSTOM';

/** Checkpoints one strategy may combine. */
export const MAX_STRATEGY_CHECKPOINTS = 32;

/**
 * A selection strategy in normal form: what is stored with a saved selection and replayed to
 * reproduce it. Weights are already normalised (they sum to 1), so a replay does not depend on
 * how they were first derived (e.g. from learning rates).
 */
export interface Strategy {
  method: SelectionMethod;
  term: ScalarTermName;
  direction: Direction;
  targetKey: string | null;
  /** The parameter subset the kernel terms are over ('all', or a name of the model's subsets). */
  subset: ParameterSubset;
  checkpointIds: number[];
  weighting: Weighting;
  weights: number[];
  filter: SampleFilter;
  k: number | null;
  fraction: number | null;
  threshold: number | null;
}

/** The stored form, parsed back with the same rules (a stored strategy is data like any other). */
export const StoredStrategy = z.object({
  method: z.enum(SELECTION_METHODS),
  term: z.enum(TERM_NAMES),
  direction: z.enum(['ASC', 'DESC']),
  targetKey: z.string().nullable(),
  // Selections saved before subsets existed ranked over all parameters.
  subset: z.string().default(ALL_PARAMETERS).transform(storedParameterSubset),
  checkpointIds: z.array(z.number().int().positive()).min(1).max(MAX_STRATEGY_CHECKPOINTS),
  weighting: z.enum(['EQUAL', 'LEARNING_RATE', 'CUSTOM']),
  weights: z.array(z.number().finite()),
  filter: z.object({
    terms: z.array(z.object({ term: z.enum(TERM_NAMES), min: z.number().nullish(), max: z.number().nullish() })).nullish(),
    labels: z.array(z.number().int()).nullish(),
    splits: z.array(z.string()).nullish(),
    correct: z.boolean().nullish(),
    sampleIds: z.array(z.number().int()).nullish(),
  }),
  k: z.number().int().nullable(),
  fraction: z.number().nullable(),
  threshold: z.number().nullable(),
});

/** Normalises weights to sum to 1; refuses negative, non-finite or all-zero weights. */
export function normaliseWeights(weights: readonly number[], field: string): number[] {
  for (const [i, w] of weights.entries()) {
    if (!Number.isFinite(w) || w < 0) throw new BadUserInputError(`${field}[${i}] must be a finite, non-negative weight`, `${field}[${i}]`);
  }
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new BadUserInputError(`${field} must not all be zero`, field);
  return weights.map((w) => w / total);
}

/**
 * ⌈fraction · n⌉, ignoring floating-point noise: 0.1 of 30 is 3, not the 4 that 0.1 · 30 =
 * 3.0000000000000004 would round up to.
 */
export function fractionCount(fraction: number, n: number): number {
  const x = fraction * n;
  const nearest = Math.round(x);
  return Math.abs(x - nearest) <= 1e-9 * Math.max(1, x) ? nearest : Math.ceil(x);
}

/**
 * Per-class quotas for BALANCED_TOP_K: as equal as the classes allow. Each round gives every class
 * that still has candidates an equal share of what is left; a class with fewer candidates than its
 * share gives the rest back to the others; the last few (fewer than the classes) go one each to the
 * classes in label order. `counts[label]` is the class's pool size.
 */
export function balancedQuotas(counts: readonly number[], k: number): number[] {
  const quota = counts.map(() => 0);
  let remaining = Math.min(k, counts.reduce((a, b) => a + b, 0));
  while (remaining > 0) {
    const open = counts.map((n, label) => label).filter((label) => quota[label]! < counts[label]!);
    invariant(open.length > 0, 'candidates remain while quota is left');
    const share = Math.floor(remaining / open.length);
    if (share === 0) {
      for (const label of open.slice(0, remaining)) quota[label]! += 1;
      break;
    }
    for (const label of open) {
      const take = Math.min(share, counts[label]! - quota[label]!);
      quota[label]! += take;
      remaining -= take;
    }
  }
  return quota;
}

/**
 * Per-class quotas for STRATIFIED: proportional to the class sizes in the pool (largest remainder:
 * ⌊k · n_c / N⌋ each, the rest one each to the largest fractional parts, ties in label order).
 * Integer arithmetic, so the same counts always give the same quotas.
 */
export function stratifiedQuotas(counts: readonly number[], k: number): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const take = Math.min(k, total);
  if (total === 0) return counts.map(() => 0);
  const quota = counts.map((n) => Math.floor((take * n) / total));
  const remainders = counts.map((n, label) => ({ label, r: (take * n) % total }));
  let left = take - quota.reduce((a, b) => a + b, 0);
  remainders.sort((a, b) => b.r - a.r || a.label - b.label);
  for (const { label } of remainders) {
    if (left === 0) break;
    quota[label]! += 1;
    left -= 1;
  }
  return quota;
}

/** How a strategy cuts its pool, once the pool's class sizes are known. */
export type Cut = { kind: 'limit'; k: number } | { kind: 'threshold'; threshold: number } | { kind: 'quotas'; quotas: number[] };

export function cutOf(strategy: Strategy, classCounts: readonly number[]): Cut {
  const poolSize = classCounts.reduce((a, b) => a + b, 0);
  switch (strategy.method) {
    case 'TOP_K':
      return { kind: 'limit', k: strategy.k! };
    case 'TOP_FRACTION':
      return { kind: 'limit', k: fractionCount(strategy.fraction!, poolSize) };
    case 'THRESHOLD':
      return { kind: 'threshold', threshold: strategy.threshold! };
    case 'BALANCED_TOP_K':
      return { kind: 'quotas', quotas: balancedQuotas(classCounts, strategy.k!) };
    case 'STRATIFIED':
      return { kind: 'quotas', quotas: stratifiedQuotas(classCounts, strategy.k ?? fractionCount(strategy.fraction!, poolSize)) };
  }
}
