import type { Context } from '../context.js';
import { parseTargetKey, scalarTerm, type ScalarTermName } from './term-columns.js';
import { ALL_PARAMETERS, parseParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, invariant } from '../../platform/errors.js';
import { prepareQuery, rankSamples, type RankedSampleRow } from './rank.js';
import { resolveTarget } from './checkpoint-info.js';
import { checkSubset } from '../terms/subsets.js';
import {
  createSelection,
  deleteSelection,
  listSelectedSamples,
  listSelections,
  previewSelection,
  selectionById,
  storedStrategy,
  verifySelection,
} from './selections.js';
import { checkpointTermStats, runTermStats } from './stats.js';
import { termColumns } from './term-columns-read.js';
import { checkpointShape, clientProducer, writeCrossMetrics } from '../terms/metrics.js';
import { connectionFields } from '../../platform/graphql/connections.js';
import { encodeQueryArgs, MAX_QUERY_ARG_CHARS, parseFilter, parseQuery, parseStrategy, parseTarget } from './inputs.js';
import type { OrderDirection, Resolvers, ScalarTerm } from '../generated/types.js';
import { optionalId, parseId } from '../../platform/graphql/inputs.js';

/** Most kCross rows one recordKCross request may carry. */
export const MAX_KCROSS_ROWS_PER_REQUEST = 250_000;

/** Where a path of this server is fetched from: TANGENT_PUBLIC_URL when set, else the path itself. */
function serverUrl(ctx: Context, path: string): string {
  return `${ctx.config.publicUrl ?? ''}${path}`;
}

async function loadSample(ctx: Context, id: number) {
  const sample = await ctx.loaders.sampleById.load(id);
  invariant(sample, `sample ${id} is referenced but missing`);
  return sample;
}

export const curationResolvers: Resolvers = {
  Query: {
    selection: (_, { id }, ctx) => selectionById(ctx, parseId(id)),
    selections: (_, args, ctx) =>
      listSelections(ctx, { first: args.first, after: args.after, datasetId: optionalId(args.datasetId, 'datasetId'), runId: optionalId(args.runId, 'runId') }),
    previewSelection: (_, { strategy }, ctx) => previewSelection(ctx, parseStrategy(strategy, 'strategy')),
  },
  Mutation: {
    createSelection: (_, { input }, ctx) => {
      const name = input.name.trim();
      if (!name || name.length > 200) throw new BadUserInputError('The name must be 1 to 200 characters', 'input.name');
      if (input.description && input.description.length > 10_000) throw new BadUserInputError('The description must be at most 10,000 characters', 'input.description');
      return createSelection(ctx, { name, description: input.description ?? null, strategy: parseStrategy(input.strategy, 'input.strategy') });
    },
    deleteSelection: async (_, { id }, ctx) => {
      await deleteSelection(ctx, parseId(id));
      return { id };
    },
    recordKCross: async (_, args, ctx) => {
      const checkpointId = parseId(args.checkpointId, 'checkpointId');
      if (args.values.length > MAX_KCROSS_ROWS_PER_REQUEST) throw new BadUserInputError(`At most ${MAX_KCROSS_ROWS_PER_REQUEST} rows per request`, 'values');
      const shape = await checkpointShape(ctx, checkpointId);
      const key = await resolveTarget(ctx, shape.datasetId, parseTarget(args.target));
      const subset = parseParameterSubset(args.subset, 'subset');
      await checkSubset(ctx, checkpointId, subset);
      const rows = args.values.map((v, i) => ({ sampleId: parseId(v.sampleId, `values[${i}].sampleId`), kCross: v.kCross }));
      const written = await writeCrossMetrics(ctx.db, shape, key!, subset, rows, clientProducer(ctx));
      return { checkpointId, written };
    },
  },
  Checkpoint: {
    rankedSamples: (checkpoint, args, ctx) => rankSamples(ctx, checkpoint.id, parseQuery(args), args),
    termStats: (checkpoint, args, ctx) =>
      checkpointTermStats(ctx, checkpoint.id, { term: args.term, filter: parseFilter(args.filter), target: parseTarget(args.target), subset: parseParameterSubset(args.subset, 'subset') }),
    termColumns: (checkpoint, args, ctx) =>
      termColumns(ctx, checkpoint.id, { terms: args.terms, subset: parseParameterSubset(args.subset, 'subset'), filter: parseFilter(args.filter) }),
    exportUrl: async (checkpoint, args, ctx) => {
      // Checked now (terms present, target valid), so that the URL does not fail when fetched.
      await prepareQuery(ctx, checkpoint.id, parseQuery(args));
      const q = encodeQueryArgs(args);
      if (q.length > MAX_QUERY_ARG_CHARS) {
        throw new BadUserInputError('This filter is too large for a URL: save it as a selection and export that, or use `tangent export`', 'filter');
      }
      return serverUrl(ctx, `/export/checkpoints/${checkpoint.id}?format=${(args.format ?? 'JSONL').toLowerCase()}&q=${q}`);
    },
  },
  Run: {
    termStats: (run, args, ctx) =>
      runTermStats(ctx, run.id, {
        term: args.term,
        filter: parseFilter(args.filter),
        target: parseTarget(args.target),
        subset: parseParameterSubset(args.subset, 'subset'),
        checkpointIds: args.checkpointIds ? args.checkpointIds.map((id, i) => parseId(id, `checkpointIds[${i}]`)) : null,
      }),
  },
  Dataset: {
    selections: (dataset, args, ctx) => listSelections(ctx, { first: args.first, after: args.after, datasetId: dataset.id }),
  },
  RankedSample: {
    sample: (row, _, ctx) => loadSample(ctx, row.sampleId),
  },
  RankedColumns: {
    sampleIds: (rows) => Int32Array.from(rows, (r) => r.sampleId),
    indices: (rows) => Int32Array.from(rows, (r) => r.index),
    labels: (rows) => Int32Array.from(rows, (r) => r.label),
    splits: (rows) => rows.map((r) => r.split),
    scores: (rows) => rows.map((r) => r.score),
    values: (rows, { term }) => {
      const field = scalarTerm(term).field as keyof RankedSampleRow;
      return rows.map((r) => r[field] as number | null);
    },
  },
  TermStats: {
    checkpoint: async (row, _, ctx) => {
      const checkpoint = await ctx.loaders.checkpointById.load(row.checkpointId);
      invariant(checkpoint, `checkpoint ${row.checkpointId} is referenced but missing`);
      return checkpoint;
    },
    subset: (row) => row.family.spec.subset,
    count: async (row) => (await row.family.summary(row)).count,
    mean: async (row) => (await row.family.summary(row)).mean,
    stddev: async (row) => (await row.family.summary(row)).stddev,
    min: async (row) => (await row.family.summary(row)).min,
    max: async (row) => (await row.family.summary(row)).max,
    quantiles: (row, { at, exact }) => row.family.quantiles(row, at, exact ?? false),
    histogram: (row, args) => row.family.histogram(row, args.bins, args.min, args.max),
    byClass: (row) => {
      if (row.label !== null) throw new BadUserInputError('byClass of a class is not defined', 'byClass');
      return row.family.classCells(row.checkpointId);
    },
  },
  TargetSet: {
    split: (row) => {
      const target = parseTargetKey(row.key);
      return target.kind === 'split' ? target.split : null;
    },
    selection: (row, _, ctx) => {
      const target = parseTargetKey(row.key);
      return target.kind === 'selection' ? selectionById(ctx, target.selectionId) : null;
    },
  },
  Selection: {
    dataset: async (selection, _, ctx) => {
      const dataset = await ctx.loaders.datasetById.load(selection.datasetId);
      invariant(dataset, `selection ${selection.id} has no dataset`);
      return dataset;
    },
    run: (selection, _, ctx) => ctx.loaders.runById.load(selection.runId),
    method: (selection) => selection.method,
    term: (selection) => selection.term as ScalarTerm,
    direction: (selection) => selection.direction as OrderDirection,
    target: (selection) => (selection.targetKey ? { key: selection.targetKey } : null),
    subset: (selection, _, ctx) => storedStrategy(ctx, selection).subset,
    checkpoints: async (selection, _, ctx) => {
      const rows = await Promise.all(selection.checkpointIds.map((id) => ctx.loaders.checkpointById.load(id)));
      return rows.filter((row) => row !== null);
    },
    weighting: (selection, _, ctx) => storedStrategy(ctx, selection).weighting,
    k: (selection, _, ctx) => storedStrategy(ctx, selection).k,
    fraction: (selection, _, ctx) => storedStrategy(ctx, selection).fraction,
    threshold: (selection, _, ctx) => storedStrategy(ctx, selection).threshold,
    provenance: (selection) => selection.provenance as never,
    classCounts: async (selection, _, ctx) => {
      const dataset = await ctx.loaders.datasetById.load(selection.datasetId);
      const counts = selection.classCounts as { label: number; count: number }[];
      return counts.map(({ label, count }) => ({ label, count, className: dataset?.classNames[label] ?? String(label) }));
    },
    samples: (selection, args, ctx) => listSelectedSamples(ctx, selection, args),
    verify: (selection, _, ctx) => verifySelection(ctx, selection),
    exportUrl: (selection, args, ctx) => {
      const checkpoint = args.checkpointId ? `&checkpoint=${parseId(args.checkpointId, 'checkpointId')}` : '';
      return serverUrl(ctx, `/export/selections/${selection.id}?format=${(args.format ?? 'JSONL').toLowerCase()}${checkpoint}`);
    },
  },
  SelectedSample: {
    sample: (row, _, ctx) => loadSample(ctx, row.sampleId),
  },
  SelectionProvenance: {
    term: (row) => row.term as never,
    // Provenance saved before subsets existed: a kernel term was over all parameters.
    subset: (row) => (row.subset !== undefined ? row.subset : scalarTerm(row.term as ScalarTermName).kernel ? ALL_PARAMETERS : null),
    producers: (row) =>
      row.producers.map((p) => ({ count: p.count, producer: { kind: (p.kind ?? 'CLIENT') as 'CLIENT' | 'SERVER', backend: p.backend, version: p.version } })),
  },
  RankedSampleConnection: { ...connectionFields, columns: connectionFields.nodes },
  SelectedSampleConnection: connectionFields,
  SelectionConnection: connectionFields,
};
