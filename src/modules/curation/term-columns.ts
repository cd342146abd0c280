import { BadUserInputError } from '../../platform/errors.js';
import { SCALAR_TERMS, isKernelTerm, type TermSpec } from '../../platform/values/term.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';

/**
 * The scalar terms a curation query filters, ranks, summarises and selects by: the real-valued
 * columns of sample_metric (src/platform/values/term.ts) plus kCross, which lives in its own table because it
 * depends on a target set. Column names in curation SQL come only from this list.
 */
export type ScalarTermName = (typeof SCALAR_TERMS)[number]['term'] | 'K_CROSS';

/**
 * kCross(x_u; T) = mean over x_o ∈ T of ‖K(x_o, x_u)‖_F (docs/concepts.md). One row per (checkpoint, target
 * set, parameter subset, sample), a row only where there is a value; `k_cross_src` names its producer like the
 * `*_src` columns of sample_metric. The compute side (on-demand terms) fills it; clients may record
 * it with the `recordKCross` mutation (src/modules/terms/cross-storage.ts).
 */
export const CROSS_TERM = {
  term: 'K_CROSS',
  field: 'kCross',
  table: 'sample_cross_metric',
  column: 'k_cross',
  srcColumn: 'k_cross_src',
  /** Primary key (checkpoint_id, target_key, subset, sample_id); index (checkpoint_id, target_key, subset, k_cross DESC). */
  key: ['checkpoint_id', 'target_key', 'subset', 'sample_id'],
} as const;

export interface ScalarTermSpec {
  term: ScalarTermName;
  /** GraphQL field and JSON key, e.g. kNorm. */
  field: string;
  /** Column in sample_metric (and sample_subset_metric for kernel terms), or `k_cross` in sample_cross_metric. */
  column: string;
  cross: boolean;
  /** A term of K, over one parameter subset: kNorm, kTrace and kCross. */
  kernel: boolean;
}

export const SCALAR_TERM_SPECS: readonly ScalarTermSpec[] = [
  ...SCALAR_TERMS.map((t: TermSpec) => ({ term: t.term as ScalarTermName, field: t.field, column: t.column, cross: false, kernel: isKernelTerm(t.term) })),
  { term: 'K_CROSS', field: CROSS_TERM.field, column: CROSS_TERM.column, cross: true, kernel: true },
];

/** The ScalarTerm names, as the enum of the input parsers (inputs.ts) and of stored strategies (strategy.ts). */
export const SCALAR_TERM_NAMES = SCALAR_TERM_SPECS.map((t) => t.term) as [ScalarTermName, ...ScalarTermName[]];

export function scalarTerm(term: ScalarTermName): ScalarTermSpec {
  const spec = SCALAR_TERM_SPECS.find((t) => t.term === term);
  if (!spec) throw new BadUserInputError(`${term} is not a scalar term`, 'term');
  return spec;
}

/**
 * What coverage is tracked for (metric_coverage.term): a sample_metric column, `correct` included;
 * a kernel term over a named parameter subset, `k_norm@<subset>` or `k_trace@<subset>`; or kCross,
 * `k_cross:<targetKey>` over all parameters and `k_cross@<subset>:<targetKey>` over a subset.
 */
export interface RequiredTerm {
  /** A ScalarTerm name, or CORRECT. */
  term: ScalarTermName | 'CORRECT';
  /** For K_CROSS: the target set it is measured against. */
  targetKey?: string | null;
  /**
   * The parameter subset of the query (default 'all'): kernel terms are over it, and other terms
   * that must be computed are computed in the same pass as K over it.
   */
  subset?: ParameterSubset | null;
}

/** The parameter subset a required term is over: its own for kernel terms, 'all' for the others (which have none). */
export function subsetOf(required: RequiredTerm): ParameterSubset {
  return required.term !== 'CORRECT' && scalarTerm(required.term).kernel ? (required.subset ?? ALL_PARAMETERS) : ALL_PARAMETERS;
}

export function coverageKey(required: RequiredTerm): string {
  if (required.term === 'CORRECT') return 'correct';
  const spec = scalarTerm(required.term);
  const subset = subsetOf(required);
  const over = subset === ALL_PARAMETERS ? '' : `@${subset}`;
  if (!spec.cross) return `${spec.column}${over}`;
  if (!required.targetKey) throw new BadUserInputError('kCross needs a target set: give `target` (a split or a selection)', 'target');
  return `k_cross${over}:${required.targetKey}`;
}

/** The name a person reads, e.g. kNorm, kNorm over head, or kCross(split:validation). */
export function describeTerm(required: RequiredTerm): string {
  if (required.term === 'CORRECT') return 'correct';
  const spec = scalarTerm(required.term);
  const subset = subsetOf(required);
  const name = spec.cross ? `kCross(${required.targetKey})` : spec.field;
  return subset === ALL_PARAMETERS ? name : `${name} over ${subset}`;
}

/** A target set T of kCross: a split of the run's dataset, or a saved selection. */
export type TargetSet = { kind: 'split'; split: string } | { kind: 'selection'; selectionId: number };

/** `split:<name>` or `selection:<id>`: the target_key of sample_cross_metric and metric_coverage. */
export function targetKey(target: TargetSet): string {
  return target.kind === 'split' ? `split:${target.split}` : `selection:${target.selectionId}`;
}

export function parseTargetKey(key: string): TargetSet {
  if (key.startsWith('split:')) return { kind: 'split', split: key.slice('split:'.length) };
  const match = /^selection:([1-9][0-9]*)$/.exec(key);
  if (match) return { kind: 'selection', selectionId: Number(match[1]) };
  throw new Error(`Invariant violated: ${key} is not a target key`);
}
