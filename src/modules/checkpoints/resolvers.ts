import { invariant } from '../../platform/errors.js';
import * as checkpoints from './service.js';
import { listMetrics } from '../terms/metrics-list.js';
import * as metrics from '../terms/metrics.js';
import { TERMS, isKernelTerm } from '../../platform/values/term.js';
import { ALL_PARAMETERS } from '../../platform/values/parameter-subset.js';
import { loadRun } from '../runs/service.js';
import type { Resolvers } from '../generated/types.js';
import { CheckpointInput, parseId, parseInput } from '../../platform/graphql/inputs.js';
import type { MetricValues } from '../terms/metrics.js';
import { readAheadCheckpointFields } from '../curation/read-ahead.js';

export const checkpointResolvers: Resolvers = {
  Query: {
    checkpoint: async (_, { id }, ctx, info) => {
      const checkpointId = parseId(id);
      // What the curation fields under it read starts now, beside this lookup rather than after it;
      // when they need the checkpoint's run and dataset, one statement reads them with it (and
      // primes checkpointById). A missing checkpoint is null either way.
      if (!readAheadCheckpointFields(ctx, checkpointId, info)) return ctx.loaders.checkpointById.load(checkpointId);
      return (await ctx.loaders.checkpointContextById.load(checkpointId))?.checkpoint ?? null;
    },
  },
  Mutation: {
    createCheckpoint: (_, { input }, ctx) =>
      checkpoints.createCheckpoint(ctx, parseId(input.runId, 'input.runId'), parseInput(CheckpointInput, input, 'input'), input.weightData),
    deleteCheckpoint: async (_, { id }, ctx) => {
      await checkpoints.deleteCheckpoint(ctx, parseId(id));
      return { id };
    },
    recordMetrics: async (_, args, ctx) => {
      const checkpointId = parseId(args.checkpointId, 'checkpointId');
      const rows: MetricValues[] = args.metrics.map((m, i) => ({ ...m, sampleId: parseId(m.sampleId, `metrics[${i}].sampleId`) }) as MetricValues);
      const written = await metrics.recordMetrics(ctx, checkpointId, rows);
      return { checkpointId, written };
    },
  },
  RecordMetricsPayload: {
    checkpoint: (payload, _, ctx) => checkpoints.loadCheckpoint(ctx, payload.checkpointId),
  },
  Checkpoint: {
    run: (checkpoint, _, ctx) => loadRun(ctx, checkpoint.runId),
    weights: async (checkpoint, _, ctx) => {
      const weights = await ctx.loaders.weightsByCheckpoint.load(checkpoint.id);
      invariant(weights, `checkpoint ${checkpoint.id} has no weights`);
      return weights;
    },
    metrics: (checkpoint, args, ctx) => listMetrics(ctx, checkpoint.id, args),
  },
  CheckpointWeights: {
    specs: (weights) => weights.specs,
    data: (weights) => weights.data,
  },
  SampleMetric: {
    checkpoint: (row, _, ctx) => checkpoints.loadCheckpoint(ctx, row.checkpointId),
    // Prisma reads a NULL real[] as []; a stored vector always has V ≥ 2 values, so [] means missing.
    logits: (row) => (row.logits?.length ? row.logits : null),
    probs: (row) => (row.probs?.length ? row.probs : null),
    sample: async (row, _, ctx) => {
      const sample = await ctx.loaders.sampleById.load(row.sampleId);
      invariant(sample, `sample ${row.sampleId} is referenced but missing`);
      return sample;
    },
    subset: (row) => row.subset ?? ALL_PARAMETERS,
    provenance: async (row, _, ctx) => {
      const out = [];
      for (const t of TERMS) {
        const src = row[`${t.field}Src`];
        if (src === null || src === undefined) continue;
        const producer = await ctx.loaders.producerById.load(src);
        invariant(producer, `producer ${src} is referenced but missing`);
        out.push({
          term: t.term,
          producer: { kind: producer.kind, backend: producer.backend || null, version: producer.version || null },
          subset: isKernelTerm(t.term) ? (row.subset ?? ALL_PARAMETERS) : null,
        });
      }
      return out;
    },
  },
};
