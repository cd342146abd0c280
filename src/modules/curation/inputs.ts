import { z } from 'zod';
import type { Direction, SampleFilter } from './query.js';
import { SCALAR_TERM_NAMES as TERM_NAMES, type TargetSet } from './term-columns.js';
import { ALL_PARAMETERS, parseParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError } from '../../platform/errors.js';
import type { StrategyInput } from './selections.js';
import type { SampleQuery } from './query.js';
import type { SampleTermFilter, SampleTermOrder, SelectionStrategyInput, TargetSetInput } from '../generated/types.js';
import { parseId, parseInput } from '../../platform/graphql/inputs.js';

const finite = z.number().finite();

const TermRangeInput = z
  .object({ term: z.enum(TERM_NAMES), min: finite.nullish(), max: finite.nullish() })
  .refine((r) => (r.min ?? null) !== null || (r.max ?? null) !== null, { message: 'give min, max or both', path: ['min'] })
  .refine((r) => r.min === null || r.min === undefined || r.max === null || r.max === undefined || r.min <= r.max, {
    message: 'min must not be above max',
    path: ['min'],
  });

const FilterInput = z.object({
  terms: z.array(TermRangeInput).min(1, 'leave it out rather than empty').max(32).nullish(),
  labels: z.array(z.number().int().min(0)).min(1, 'leave it out rather than empty').max(100_000).nullish(),
  splits: z.array(z.string().trim().min(1).max(64)).min(1, 'leave it out rather than empty').max(100).nullish(),
  correct: z.boolean().nullish(),
  sampleIds: z.array(z.union([z.string(), z.number()])).min(1, 'leave it out rather than empty').max(1_000_000).nullish(),
});

/** A SampleTermFilter argument, checked, with sample ids parsed. */
export function parseFilter(input: SampleTermFilter | null | undefined, field = 'filter'): SampleFilter {
  if (!input) return {};
  const f = parseInput(FilterInput, input, field);
  return {
    terms: f.terms ?? null,
    labels: f.labels ?? null,
    splits: f.splits ?? null,
    correct: f.correct ?? null,
    sampleIds: f.sampleIds ? f.sampleIds.map((id, i) => parseId(id, `${field}.sampleIds[${i}]`)) : null,
  };
}

export function parseOrder(input: SampleTermOrder | null | undefined): SampleQuery['order'] {
  return { term: input?.term ?? 'K_NORM', direction: (input?.direction ?? 'DESC') as Direction };
}

/** A TargetSetInput: exactly one of a split or a selection. */
export function parseTarget(input: TargetSetInput | null | undefined, field = 'target'): TargetSet | null {
  if (!input) return null;
  const hasSplit = input.split !== null && input.split !== undefined;
  const hasSelection = input.selectionId !== null && input.selectionId !== undefined;
  if (hasSplit === hasSelection) throw new BadUserInputError('A target set is either a split or a selection: give exactly one', field);
  if (hasSelection) return { kind: 'selection', selectionId: parseId(input.selectionId!, `${field}.selectionId`) };
  const split = input.split!.trim();
  if (!split || split.length > 64) throw new BadUserInputError('The split must be 1 to 64 characters', `${field}.split`);
  return { kind: 'split', split };
}

export function parseQuery(args: { filter?: SampleTermFilter | null; orderBy?: SampleTermOrder | null; target?: TargetSetInput | null; subset?: string | null }): SampleQuery {
  return { filter: parseFilter(args.filter), order: parseOrder(args.orderBy), target: parseTarget(args.target), subset: parseParameterSubset(args.subset, 'subset') };
}

/** A SelectionStrategyInput, its parts parsed; the strategy's own rules are checked by normaliseStrategy. */
export function parseStrategy(input: SelectionStrategyInput, field: string): StrategyInput {
  const weighting = input.weighting ?? 'EQUAL';
  const weights = input.weights ?? null;
  if (weighting === 'CUSTOM' && !weights) throw new BadUserInputError('CUSTOM weighting needs `weights`, one per checkpoint', `${field}.weights`);
  if (weights && weighting === 'LEARNING_RATE') throw new BadUserInputError('Give `weights` or LEARNING_RATE weighting, not both', `${field}.weights`);
  return {
    checkpointIds: input.checkpointIds.map((id, i) => parseId(id, `${field}.checkpointIds[${i}]`)),
    term: input.term ?? 'K_NORM',
    direction: (input.direction ?? 'DESC') as Direction,
    target: parseTarget(input.target, `${field}.target`),
    subset: parseParameterSubset(input.subset, `${field}.subset`),
    weighting: weighting === 'LEARNING_RATE' ? 'LEARNING_RATE' : 'EQUAL',
    weights,
    filter: parseFilter(input.filter, `${field}.filter`),
    method: input.method,
    k: input.k ?? null,
    fraction: input.fraction ?? null,
    threshold: input.threshold ?? null,
  };
}

/** Longest `q` an export URL carries (a URL must stay well under the HTTP header limit of 16 KiB). */
export const MAX_QUERY_ARG_CHARS = 8_000;

/**
 * The query arguments of an export URL, as the route reads them back (base64url JSON). The subset is
 * written only when it is not 'all', so URLs of queries over all parameters read as they always did.
 */
export function encodeQueryArgs(args: { filter?: SampleTermFilter | null; orderBy?: SampleTermOrder | null; target?: TargetSetInput | null; subset?: string | null }): string {
  const subset = args.subset && args.subset !== ALL_PARAMETERS ? { subset: args.subset } : {};
  return Buffer.from(JSON.stringify({ filter: args.filter ?? null, orderBy: args.orderBy ?? null, target: args.target ?? null, ...subset })).toString('base64url');
}

export function decodeQueryArgs(text: string | undefined, field = 'q'): SampleQuery {
  if (!text) return parseQuery({});
  let value: unknown;
  try {
    if (text.length > MAX_QUERY_ARG_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) throw new Error('not base64url');
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new BadUserInputError('`q` must be base64url JSON of {filter, orderBy, target, subset}, as exportUrl writes it', field);
  }
  const parsed = z
    .object({
      filter: z.record(z.string(), z.unknown()).nullish(),
      orderBy: z.object({ term: z.enum(TERM_NAMES), direction: z.enum(['ASC', 'DESC']).nullish() }).nullish(),
      target: z.object({ split: z.string().nullish(), selectionId: z.union([z.string(), z.number()]).nullish() }).nullish(),
      subset: z.string().nullish(),
    })
    .safeParse(value);
  if (!parsed.success) throw new BadUserInputError('`q` must be base64url JSON of {filter, orderBy, target, subset}, as exportUrl writes it', field);
  return {
    filter: parseFilter(parsed.data.filter as SampleTermFilter | null | undefined),
    order: parseOrder(parsed.data.orderBy as SampleTermOrder | null | undefined),
    target: parseTarget(
      parsed.data.target ? { split: parsed.data.target.split ?? null, selectionId: parsed.data.target.selectionId === null || parsed.data.target.selectionId === undefined ? null : String(parsed.data.target.selectionId) } : null,
    ),
    subset: parseParameterSubset(parsed.data.subset, `${field}.subset`),
  };
}
