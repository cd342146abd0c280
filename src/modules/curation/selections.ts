import type { Selection } from '../../platform/db/generated/client.js';
import { afterCommit } from '../../platform/db/prisma-errors.js';
import { canonicalJson } from '../../io/tfjs-model.js';
import { findMissingTerms } from '../terms/coverage.js';
import { scalarTerm, type ScalarTermName, type TargetSet } from './term-columns.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import type { Sql } from '../../platform/db/sql.js';
import { BadUserInputError, ConflictError, NotFoundError, TangentError, TermsMissingError } from '../../platform/errors.js';
import { decodeCursor, pageSize, toConnection } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { VERSION } from '../../platform/version.js';
import { checkSubset } from '../terms/subsets.js';
import { ensureTerms } from '../terms/availability.js';
import { checkpointInfos, classNameOf, resolveTarget, type CheckpointInfo, type CurationContext } from './checkpoint-info.js';
import { requiredTerms, scopeOf, type Direction, type SampleFilter } from './query.js';
import { cutOf, MAX_STRATEGY_CHECKPOINTS, normaliseWeights, StoredStrategy, type Cut, type SelectionMethod, type Strategy } from './strategy.js';
import {
  compareWithSaved,
  countSelections,
  deleteSelectionRows,
  findSelection,
  findSelectionByName,
  insertSelectedSamples,
  insertSelection,
  poolClassCounts,
  poolProducerCounts,
  readSelection,
  repeatableRead,
  selectedByLabel,
  selectedSamplePage,
  selectionPage,
} from './selections-storage.js';

/** A strategy as a client gives it (ids parsed, everything else as sent). */
export interface StrategyInput {
  checkpointIds: number[];
  term: ScalarTermName;
  direction: Direction;
  target: TargetSet | null;
  /** The parameter subset of the kernel terms (default 'all'). */
  subset?: ParameterSubset;
  weighting: 'EQUAL' | 'LEARNING_RATE';
  weights: number[] | null;
  filter: SampleFilter;
  method: SelectionMethod;
  k: number | null;
  fraction: number | null;
  threshold: number | null;
}

export interface ClassCount {
  label: number;
  className: string;
  count: number;
}

export interface SelectionPreview {
  count: number;
  poolSize: number;
  classCounts: ClassCount[];
  minScore: number | null;
  maxScore: number | null;
}

export interface SelectionVerification {
  reproduces: boolean;
  /** Samples the replay selects. */
  count: number;
  /** Saved samples the replay does not select. */
  missing: number;
  /** Samples the replay selects that were not saved. */
  extra: number;
  /** Samples in both whose rank or score differs. */
  moved: number;
  /** Why the strategy could not be replayed, when it could not. */
  problem: string | null;
}

export interface SelectedSampleRow {
  selectionId: number;
  rank: number;
  score: number;
  sampleId: number;
  index: number;
  label: number;
  className: string;
  split: string;
}

/** Largest k a strategy may ask for. */
const MAX_K = 100_000_000;

/**
 * Checks a strategy and puts it in normal form: the checkpoints exist and are of one run, weights
 * derived (equal, by learning rate as LESS does, or as given) and normalised, the method's
 * parameter present and sane, the target set valid for the dataset.
 */
export async function normaliseStrategy(ctx: CurationContext, input: StrategyInput, field = 'strategy'): Promise<{ strategy: Strategy; info: CheckpointInfo }> {
  const ids = input.checkpointIds;
  if (ids.length === 0) throw new BadUserInputError('A strategy needs at least one checkpoint', `${field}.checkpointIds`);
  if (ids.length > MAX_STRATEGY_CHECKPOINTS) throw new BadUserInputError(`At most ${MAX_STRATEGY_CHECKPOINTS} checkpoints per strategy`, `${field}.checkpointIds`);
  if (new Set(ids).size !== ids.length) throw new BadUserInputError('A checkpoint appears twice', `${field}.checkpointIds`);
  const infos = await checkpointInfos(ctx, ids);
  const info = infos[0]!;
  for (const [i, other] of infos.entries()) {
    if (other.runId !== info.runId) throw new BadUserInputError(`Checkpoint ${other.id} is of another run than checkpoint ${info.id}`, `${field}.checkpointIds[${i}]`);
  }
  let weights: number[];
  let weighting: Strategy['weighting'] = input.weighting;
  if (input.weights) {
    if (input.weights.length !== ids.length) throw new BadUserInputError(`Give one weight per checkpoint (${ids.length})`, `${field}.weights`);
    weights = normaliseWeights(input.weights, `${field}.weights`);
    weighting = 'CUSTOM';
  } else if (input.weighting === 'LEARNING_RATE') {
    for (const [i, c] of infos.entries()) {
      if (c.learningRate === null || !(c.learningRate > 0)) {
        throw new BadUserInputError(`Checkpoint ${c.id} has no positive learning rate to weight it by`, `${field}.checkpointIds[${i}]`);
      }
    }
    weights = normaliseWeights(infos.map((c) => c.learningRate!), `${field}.weights`);
  } else {
    weights = ids.map(() => 1 / ids.length);
  }
  const need = (name: 'k' | 'fraction' | 'threshold') => {
    if (input[name] === null || input[name] === undefined) throw new BadUserInputError(`${input.method} needs \`${name}\``, `${field}.${name}`);
  };
  const { method } = input;
  if (method === 'TOP_K' || method === 'BALANCED_TOP_K') need('k');
  if (method === 'TOP_FRACTION') need('fraction');
  if (method === 'THRESHOLD') need('threshold');
  if (method === 'STRATIFIED' && (input.k === null) === (input.fraction === null)) {
    throw new BadUserInputError('STRATIFIED needs either `k` or `fraction`', `${field}.k`);
  }
  if (input.k !== null && (!Number.isInteger(input.k) || input.k < 1 || input.k > MAX_K)) throw new BadUserInputError(`k must be an integer from 1 to ${MAX_K}`, `${field}.k`);
  if (input.fraction !== null && !(input.fraction > 0 && input.fraction <= 1)) throw new BadUserInputError('fraction must be in (0, 1]', `${field}.fraction`);
  if (input.threshold !== null && !Number.isFinite(input.threshold)) throw new BadUserInputError('threshold must be finite', `${field}.threshold`);
  const targetKey = await resolveTarget(ctx, info.datasetId, input.target, `${field}.target`);
  const subset = input.subset ?? ALL_PARAMETERS;
  for (const id of ids) await checkSubset(ctx, id, subset, `${field}.subset`);
  requiredTerms([input.term], input.filter, targetKey, subset);
  const uses = (name: 'k' | 'fraction' | 'threshold') =>
    (name === 'k' && ['TOP_K', 'BALANCED_TOP_K', 'STRATIFIED'].includes(method)) ||
    (name === 'fraction' && ['TOP_FRACTION', 'STRATIFIED'].includes(method)) ||
    (name === 'threshold' && method === 'THRESHOLD');
  const strategy: Strategy = {
    method,
    term: input.term,
    direction: input.direction,
    targetKey,
    subset,
    checkpointIds: ids,
    weighting,
    weights,
    filter: normaliseFilter(input.filter),
    k: uses('k') ? input.k : null,
    fraction: uses('fraction') ? input.fraction : null,
    threshold: uses('threshold') ? input.threshold : null,
  };
  return { strategy, info };
}

/** Drops empty parts so equal filters store equal JSON. */
function normaliseFilter(filter: SampleFilter): SampleFilter {
  const out: SampleFilter = {};
  if (filter.terms?.length) out.terms = filter.terms.map((r) => ({ term: r.term, min: r.min ?? null, max: r.max ?? null }));
  if (filter.labels?.length) out.labels = [...filter.labels];
  if (filter.splits?.length) out.splits = [...filter.splits];
  if (filter.correct !== null && filter.correct !== undefined) out.correct = filter.correct;
  if (filter.sampleIds?.length) out.sampleIds = [...filter.sampleIds];
  return out;
}

/** Makes the strategy's terms available at every checkpoint (the on-demand seam). */
async function ensureStrategyTerms(ctx: CurationContext, strategy: Strategy, datasetId: number): Promise<void> {
  const required = requiredTerms([strategy.term], strategy.filter, strategy.targetKey, strategy.subset);
  for (const id of strategy.checkpointIds) await ensureTerms(ctx, id, required, scopeOf(datasetId, strategy.filter));
}

/** The same check without computing anything, inside a transaction: nothing went missing meanwhile. */
async function assertStrategyTerms(sql: Sql, strategy: Strategy, datasetId: number): Promise<void> {
  const required = requiredTerms([strategy.term], strategy.filter, strategy.targetKey, strategy.subset);
  for (const id of strategy.checkpointIds) {
    const missing = await findMissingTerms(sql, id, required, scopeOf(datasetId, strategy.filter));
    if (missing.length > 0) throw new TermsMissingError(id, missing);
  }
}

async function selectedSummary(sql: Sql, strategy: Strategy, cut: Cut, classNames: readonly string[], poolSize: number): Promise<SelectionPreview> {
  const rows = await selectedByLabel(sql, strategy, cut);
  const byLabel = new Map(rows.map((r) => [r.label, r]));
  let lo: number | null = null;
  let hi: number | null = null;
  for (const r of rows) {
    if (r.lo !== null && (lo === null || r.lo < lo)) lo = r.lo;
    if (r.hi !== null && (hi === null || r.hi > hi)) hi = r.hi;
  }
  const classCounts = classNames.map((className, label) => ({ label, className, count: byLabel.get(label)?.count ?? 0 }));
  return { count: classCounts.reduce((a, c) => a + c.count, 0), poolSize, classCounts, minScore: lo, maxScore: hi };
}

/** Dry run: how many samples, of which classes, the strategy would take now. Nothing is written. */
export async function previewSelection(ctx: CurationContext, input: StrategyInput): Promise<SelectionPreview> {
  const { strategy, info } = await normaliseStrategy(ctx, input);
  await ensureStrategyTerms(ctx, strategy, info.datasetId);
  return ctx.db.transaction(async (tx) => {
    await repeatableRead(tx, ctx.db.kind);
    const counts = await poolClassCounts(tx, strategy, info.classNames.length);
    return selectedSummary(tx, strategy, cutOf(strategy, counts), info.classNames, sum(counts));
  });
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Saves a selection: runs the strategy and stores its samples (rank, score) together with
 * everything needed to reproduce it, in one transaction. The rows never change afterwards.
 * Idempotent under retry: the same name and strategy again answer the stored selection (as it was
 * saved, even if the data changed since); a different one under that name is a CONFLICT.
 */
export async function createSelection(
  ctx: CurationContext,
  input: { name: string; description: string | null; strategy: StrategyInput },
): Promise<Selection> {
  const { strategy, info } = await normaliseStrategy(ctx, input.strategy, 'input.strategy');
  await ensureStrategyTerms(ctx, strategy, info.datasetId);
  let id: number;
  try {
    id = await ctx.db.transaction(async (tx) => {
      await repeatableRead(tx, ctx.db.kind);
      await assertStrategyTerms(tx, strategy, info.datasetId);
      const counts = await poolClassCounts(tx, strategy, info.classNames.length);
      const cut = cutOf(strategy, counts);
      const summary = await selectedSummary(tx, strategy, cut, info.classNames, sum(counts));
      const provenance = await termProvenance(tx, strategy);
      const selectionId = await insertSelection(tx, {
        name: input.name,
        description: input.description,
        datasetId: info.datasetId,
        runId: info.runId,
        strategy,
        provenance,
        classCounts: summary.classCounts.map(({ label, count }) => ({ label, count })),
        poolSize: summary.poolSize,
        sampleCount: summary.count,
        softwareVersion: VERSION,
      });
      await insertSelectedSamples(tx, selectionId, strategy, cut);
      return selectionId;
    });
  } catch (error) {
    if ((error as { code?: string }).code !== '23505') throw error;
    // (dataset, name) is the key: the same strategy sent again (a retry after OUTCOME_UNKNOWN) answers the stored selection.
    const existing = await findSelectionByName(ctx.db, info.datasetId, input.name);
    if (existing && existing.description === input.description && canonicalJson(existing.strategy) === canonicalJson(JSON.parse(JSON.stringify(strategy)))) return existing;
    throw new ConflictError(`The dataset already has a different selection named ${JSON.stringify(input.name)}`, { field: 'input.name' });
  }
  return afterCommit(() => readSelection(ctx.db, id));
}

/**
 * Per checkpoint, who produced the term values of the pool, and the parameter subset they are over
 * (null for a term that is not a kernel term): [{checkpointId, term, subset, producers: [{kind, backend, version, count}]}].
 */
async function termProvenance(sql: Sql, strategy: Strategy) {
  const rows = await poolProducerCounts(sql, strategy);
  const subset = scalarTerm(strategy.term).kernel ? strategy.subset : null;
  return strategy.checkpointIds.map((checkpointId, i) => ({
    checkpointId,
    term: strategy.term,
    subset,
    producers: rows
      .filter((r) => r.i === i)
      .map((r) => ({ kind: r.kind, backend: r.backend || null, version: r.version || null, count: r.count })),
  }));
}

/**
 * The stored strategy of a selection, parsed once per request (a request reads several fields of
 * one selection): `ctx.loaders.selectionStrategies` keeps it by id, as a selection never changes.
 */
export function storedStrategy(ctx: Pick<CurationContext, 'loaders'>, selection: Pick<Selection, 'id' | 'strategy'>): Strategy {
  const cached = ctx.loaders.selectionStrategies.get(selection.id);
  if (cached) return cached;
  const parsed = StoredStrategy.safeParse(selection.strategy);
  if (!parsed.success) throw new Error(`Invariant violated: selection ${selection.id} has a malformed strategy`);
  ctx.loaders.selectionStrategies.set(selection.id, parsed.data);
  return parsed.data;
}

/**
 * Replays a saved selection's strategy on the data as it is now and compares sample by sample
 * (ids, ranks and scores). Terms are only checked, never computed, by a verification.
 */
export async function verifySelection(ctx: CurationContext, selection: Selection): Promise<SelectionVerification> {
  const strategy = storedStrategy(ctx, selection);
  const dataset = await ctx.loaders.datasetById.load(selection.datasetId);
  const classes = dataset?.classNames.length ?? 0;
  try {
    for (const id of strategy.checkpointIds) {
      if (!(await ctx.loaders.checkpointById.load(id))) throw new NotFoundError('Checkpoint', id);
    }
    return await ctx.db.transaction(async (tx) => {
      await repeatableRead(tx, ctx.db.kind);
      await assertStrategyTerms(tx, strategy, selection.datasetId);
      const counts = await poolClassCounts(tx, strategy, classes);
      const result = await compareWithSaved(tx, selection.id, strategy, cutOf(strategy, counts));
      return { ...result, reproduces: result.missing === 0 && result.extra === 0 && result.moved === 0, problem: null };
    });
  } catch (error) {
    if (error instanceof TangentError) return { reproduces: false, count: 0, missing: selection.sampleCount, extra: 0, moved: 0, problem: error.message };
    throw error;
  }
}

/** A selection's samples in rank order, keyset-paginated by rank. */
export async function listSelectedSamples(
  ctx: CurationContext,
  selection: Selection,
  page: { first?: number | null; after?: string | null },
): Promise<ConnectionRow<SelectedSampleRow>> {
  const list = `selection:${selection.id}`;
  const limit = pageSize(page.first, ctx.config.maxPageSize);
  const key = decodeCursor(list, page.after);
  const after = key?.[0] ?? 0;
  if (key && (key.length !== 1 || typeof after !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  const dataset = await ctx.loaders.datasetById.load(selection.datasetId);
  const rows =
    limit === 0
      ? []
      : (await selectedSamplePage(ctx.db.sql, selection.id, Number(after), limit + 1)).map((r) => ({ ...r, className: classNameOf(dataset?.classNames ?? [], r.label) }));
  return toConnection(list, rows, limit, (row) => [row.rank], async () => selection.sampleCount);
}

/** A selection by id, or null when there is none. */
export function selectionById(ctx: Pick<CurationContext, 'db'>, id: number): Promise<Selection | null> {
  return findSelection(ctx.db, id);
}

/** Selections, newest last, optionally of one dataset or run. */
export async function listSelections(
  ctx: CurationContext,
  args: { first?: number | null; after?: string | null; datasetId?: number | null; runId?: number | null },
): Promise<ConnectionRow<Selection>> {
  const list = 'selections';
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const key = decodeCursor(list, args.after);
  const after = key?.[0];
  if (key && (key.length !== 1 || typeof after !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  const where = {
    ...(args.datasetId ? { datasetId: args.datasetId } : {}),
    ...(args.runId ? { runId: args.runId } : {}),
  };
  const rows = limit === 0 ? [] : await selectionPage(ctx.db, where, typeof after === 'number' ? after : undefined, limit + 1);
  return toConnection(list, rows, limit, (row) => [row.id], () => countSelections(ctx.db, where));
}

/** Deletes a selection with its samples and any kCross values measured against it. */
export async function deleteSelection(ctx: CurationContext, id: number): Promise<void> {
  const deleted = await ctx.db.transaction((tx) => deleteSelectionRows(tx, id));
  if (!deleted) throw new NotFoundError('Selection', id);
}

