import { z } from 'zod';
import type { Context } from '../context.js';
import { dynamicsSummary } from './dynamics-summary.js';
import { probabilityPaths } from './probability-paths.js';
import { DEFAULT_WEIGHT_DECAY, startTraining, trainingOf, trainingProgress, type TrainRequest, type TrainSpec } from './service.js';
import type { FineTuning } from './storage.js';
import type { TrainOptimizer } from './train-loop.js';
import type { Resolvers, TrainRunInput } from '../generated/types.js';
import { IdempotencyKey, parseId, parseInput } from '../../platform/graphql/inputs.js';
import type { SampleRow } from '../../platform/graphql/rows.js';

const MAX_INT32 = 2_147_483_647;

/** `trainRun`'s input, checked field by field (GraphQL defaults are filled in before this). */
const TrainInput = z
  .object({
    name: z.string().trim().min(1, 'must not be empty').max(200).nullish(),
    optimizer: z.enum(['SGD', 'ADAM', 'ADAMW']).nullish(),
    learningRate: z.number().finite().positive().max(1e6).nullish(),
    weightDecay: z.number().finite().min(0).max(1e6).nullish(),
    epochs: z.number().int().min(1).max(100_000).nullish(),
    batchSize: z.number().int().min(1).max(1_000_000).nullish(),
    seed: z.number().int().min(-MAX_INT32 - 1).max(MAX_INT32).nullish(),
    split: z.string().trim().min(1, 'must not be empty').max(64).nullish(),
    trainFraction: z.number().finite().gt(0, 'must be > 0').max(1, 'must be ≤ 1').nullish(),
    analyzeEvery: z.number().int().min(1).max(100_000).nullish(),
    trackEverySteps: z.number().int().min(1).max(MAX_INT32).nullish(),
    trackSamples: z.number().int().min(1).max(10_000).nullish(),
    analyzeEverySteps: z.number().int().min(1).max(MAX_INT32).nullish(),
    trackSampleIds: z.array(z.string()).min(1).max(10_000).nullish(),
    fineTuning: z.enum(['FULL', 'HEAD', 'ADAPTER_HEAD']).nullish(),
    idempotencyKey: IdempotencyKey,
  })
  .superRefine((input, ctx) => {
    if (input.weightDecay !== null && input.weightDecay !== undefined && input.optimizer !== 'ADAMW') {
      ctx.addIssue({ code: 'custom', path: ['weightDecay'], message: 'weightDecay is AdamW\'s; give optimizer ADAMW (or no weightDecay)' });
    }
  });

/** The GraphQL input as a training request, every default resolved. */
export function parseTrainRun(input: TrainRunInput): TrainRequest {
  const v = parseInput(TrainInput, input, 'input');
  const optimizer = (v.optimizer ?? 'ADAM').toLowerCase() as TrainOptimizer;
  return {
    modelId: parseId(input.modelId, 'input.modelId'),
    datasetId: parseId(input.datasetId, 'input.datasetId'),
    name: v.name ?? null,
    idempotencyKey: v.idempotencyKey ?? null,
    fromCheckpointId: input.fromCheckpointId === null || input.fromCheckpointId === undefined ? null : parseId(input.fromCheckpointId, 'input.fromCheckpointId'),
    optimizer,
    learningRate: v.learningRate ?? 0.001,
    weightDecay: optimizer === 'adamw' ? (v.weightDecay ?? DEFAULT_WEIGHT_DECAY) : null,
    epochs: v.epochs ?? 10,
    batchSize: v.batchSize ?? 16,
    seed: v.seed ?? 1,
    split: v.split ?? 'train',
    trainFraction: v.trainFraction ?? 1,
    analyzeEvery: v.analyzeEvery ?? 1,
    trackEverySteps: v.trackEverySteps ?? null,
    trackSamples: v.trackSamples ?? 8,
    trackSamplesGiven: v.trackSamples !== null && v.trackSamples !== undefined,
    trackSampleIds: input.trackSampleIds ? input.trackSampleIds.map((id, i) => parseId(id, `input.trackSampleIds[${i}]`)) : null,
    analyzeEverySteps: v.analyzeEverySteps ?? null,
    fineTuning: (v.fineTuning ?? 'FULL').toLowerCase() as FineTuning,
  };
}

const specOf = (row: { spec: unknown }) => row.spec as TrainSpec;

/** The samples that still exist, in dataset order. */
async function loadSamples(ctx: Context, ids: readonly number[]): Promise<SampleRow[]> {
  const samples = await ctx.loaders.sampleById.loadMany(ids);
  return samples.filter((s): s is SampleRow => s !== null && !(s instanceof Error)).sort((a, b) => a.index - b.index);
}

export const trainResolvers: Resolvers = {
  Mutation: {
    trainRun: (_, { input }, ctx) => startTraining(ctx, ctx.runtime, parseTrainRun(input)),
  },
  Run: {
    training: (run, _, ctx) => trainingOf(ctx, run.id),
    dynamicsSummary: (run, args, ctx) =>
      dynamicsSummary(ctx.db, run.id, { split: args.split ?? 'train', hTolerance: args.hTolerance ?? undefined }),
    probabilityPaths: (run, args, ctx) =>
      probabilityPaths(ctx, run, {
        sampleIds: args.sampleIds ? args.sampleIds.map((id, i) => parseId(id, `sampleIds[${i}]`)) : null,
        waitMs: args.waitMs,
      }),
  },
  Training: {
    optimizer: (row) => specOf(row).optimizer.toUpperCase() as 'SGD' | 'ADAM' | 'ADAMW',
    learningRate: (row) => specOf(row).learningRate,
    weightDecay: (row) => specOf(row).weightDecay,
    epochs: (row) => specOf(row).epochs,
    batchSize: (row) => specOf(row).batchSize,
    seed: (row) => specOf(row).seed,
    split: (row) => specOf(row).split,
    trainFraction: (row) => specOf(row).trainFraction,
    analyzeEvery: (row) => specOf(row).analyzeEvery,
    trackEverySteps: (row) => specOf(row).trackEverySteps,
    analyzeEverySteps: (row) => specOf(row).analyzeEverySteps ?? null,
    fineTuning: (row) => (specOf(row).fineTuning ?? 'full').toUpperCase() as 'FULL' | 'HEAD' | 'ADAPTER_HEAD',
    fromCheckpoint: (row, _, ctx) => {
      const id = specOf(row).fromCheckpointId;
      return id === null ? null : ctx.loaders.checkpointById.load(id);
    },
    sampleCount: (row) => row.sampleIds.length,
    trackedSamples: (row, _, ctx) => loadSamples(ctx, row.trackedIds),
    progress: (row) => trainingProgress(row),
  },
  DynamicsSummary: {
    finalCheckpoint: (row, _, ctx) => (row.finalCheckpointId === null ? null : ctx.loaders.checkpointById.load(row.finalCheckpointId)),
  },
};
