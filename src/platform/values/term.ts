/**
 * The per-sample terms stored in `sample_metric`, one entry per column pair (value, `*_src`).
 * The GraphQL `Term` enum, the Prisma fields and the SQL columns are all named from this list.
 */
export const TERMS = [
  { term: 'LOSS', field: 'loss', column: 'loss', sqlType: 'real' },
  { term: 'CORRECT', field: 'correct', column: 'correct', sqlType: 'boolean' },
  { term: 'LOGITS', field: 'logits', column: 'logits', sqlType: 'real[]' },
  { term: 'PROBS', field: 'probs', column: 'probs', sqlType: 'real[]' },
  { term: 'A_NORM', field: 'aNorm', column: 'a_norm', sqlType: 'real' },
  { term: 'H_TRACE', field: 'hTrace', column: 'h_trace', sqlType: 'real' },
  { term: 'H_MIN_EIG', field: 'hMinEig', column: 'h_min_eig', sqlType: 'real' },
  { term: 'G_NORM', field: 'gNorm', column: 'g_norm', sqlType: 'real' },
  { term: 'K_NORM', field: 'kNorm', column: 'k_norm', sqlType: 'real' },
  { term: 'K_TRACE', field: 'kTrace', column: 'k_trace', sqlType: 'real' },
] as const;

export type TermSpec = (typeof TERMS)[number];
export type TermName = TermSpec['term'];
export type TermField = TermSpec['field'];

/** Scalar terms (one number per sample), the ones a curation query can filter and rank by. */
export const SCALAR_TERMS = TERMS.filter((t) => t.sqlType === 'real');

/** Whether a raw string (a command-line argument) names a per-sample term; GraphQL's Term enum checks its own. */
export function isTermName(raw: string): raw is TermName {
  return TERMS.some((t) => t.term === raw);
}

export function termByName(term: TermName): TermSpec {
  return TERMS.find((t) => t.term === term)!;
}

/** The parameter subset kernel terms are over by default (all trainable parameters): see parameter-subset.ts. */
export { ALL_PARAMETERS } from './parameter-subset.js';

/** The per-sample terms of K (K_NORM, K_TRACE): each value is over one parameter subset. */
export const KERNEL_TERMS = TERMS.filter((t) => t.term === 'K_NORM' || t.term === 'K_TRACE');

export function isKernelTerm(term: string): boolean {
  return KERNEL_TERMS.some((t) => t.term === term);
}
