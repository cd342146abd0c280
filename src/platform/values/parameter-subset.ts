import { BadUserInputError } from '../errors.js';

/**
 * A parameter subset: the parameters J, and so every kernel term (kNorm, kTrace, kCross, the K of
 * firstOrder), is over. 'all' (ALL_PARAMETERS) is every trainable parameter and the default; any
 * other name is one of the checkpoint's model's own (Model.parameterSubsets, e.g. Mantis's 'head').
 * Kernel terms over 'all' are the columns of sample_metric; over a named subset they live in
 * sample_subset_metric (and sample_cross_metric's subset column).
 *
 * A value of this type has been parsed once, at the edge (a GraphQL resolver or input parser, the
 * /export route, the CLI), by `parseParameterSubset`: it is well formed. Whether the model answers to
 * it needs the database and the model, and is the terms module's one check (checkSubset in
 * src/modules/terms/subsets.ts), made once per request path. Deeper code takes a ParameterSubset and
 * checks neither again. Being a branded string, it goes wherever a string does (SQL parameters,
 * cache keys, the engine's subset names).
 */
export type ParameterSubset = string & { readonly __brand: 'ParameterSubset' };

/**
 * The parameter subset that J, and so every kernel term, is over unless a request names another:
 * all trainable parameters. Kernel terms over it are the columns of sample_metric; over a named
 * subset (Model.parameterSubsets, e.g. Mantis's 'head') they live in sample_subset_metric.
 */
export const ALL_PARAMETERS = 'all' as ParameterSubset;

/** How `subset` arguments name a parameter subset; which names exist is the model's to say (Model.parameterSubsets). */
const SUBSET_NAME = /^[A-Za-z0-9_][A-Za-z0-9_./-]{0,99}$/;

/**
 * A `subset` argument, parsed once at the edge: 'all' when absent, else a well-formed name (checked
 * against the model later, by checkSubset). A malformed name is BAD_USER_INPUT naming `field`.
 */
export function parseParameterSubset(raw: string | null | undefined, field: string): ParameterSubset {
  if (raw === null || raw === undefined) return ALL_PARAMETERS;
  if (!SUBSET_NAME.test(raw)) {
    throw new BadUserInputError('A parameter subset is named by 1 to 100 letters, digits, _ . / or - (e.g. all or head); Model.parameterSubsets lists them', field);
  }
  return raw as ParameterSubset;
}

/**
 * A subset read back from where this server wrote it (a job row, a stored selection, a database row):
 * it was parsed and checked when it was written, so it is not parsed again. `null` means 'all'.
 */
export function storedParameterSubset(stored: string | null | undefined): ParameterSubset {
  return (stored ?? ALL_PARAMETERS) as ParameterSubset;
}
