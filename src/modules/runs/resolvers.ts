import { refreshLoaders } from '../context.js';
import { NotFoundError } from '../../platform/errors.js';
import { listCheckpoints } from '../checkpoints/service.js';
import * as runs from './service.js';
import { loadDataset } from '../datasets/service.js';
import { loadModel } from '../models/service.js';
import type { Resolvers } from '../generated/types.js';
import { optionalId, parseId, parseInput, RunInput, UpdateRunInput } from '../../platform/graphql/inputs.js';

export const runResolvers: Resolvers = {
  Query: {
    run: (_, { id }, ctx) => ctx.loaders.runById.load(parseId(id)),
    runs: (_, { first, after, filter }, ctx) =>
      runs.listRuns(ctx, {
        first,
        after,
        where: {
          ...(filter?.datasetId ? { datasetId: optionalId(filter.datasetId, 'filter.datasetId') } : {}),
          ...(filter?.modelId ? { modelId: optionalId(filter.modelId, 'filter.modelId') } : {}),
          ...(filter?.status ? { status: filter.status } : {}),
        },
      }),
  },
  Mutation: {
    createRun: (_, { input }, ctx) =>
      runs.createRun(ctx, parseId(input.modelId, 'input.modelId'), parseId(input.datasetId, 'input.datasetId'), parseInput(RunInput, input, 'input')),
    updateRun: (_, { id, input }, ctx) => runs.updateRun(ctx, parseId(id), parseInput(UpdateRunInput, input, 'input')),
    deleteRun: async (_, { id }, ctx) => {
      await runs.deleteRun(ctx, parseId(id));
      return { id };
    },
  },
  Subscription: {
    runUpdated: {
      subscribe: async function* (_, { id }, ctx) {
        const runId = parseId(id);
        if (!(await ctx.loaders.runById.load(runId))) throw new NotFoundError('Run', runId);
        for await (const event of ctx.pubsub.subscribe('runUpdated')) {
          if (event.runId !== runId) continue;
          refreshLoaders(ctx);
          const run = await ctx.loaders.runById.load(runId);
          if (!run) return;
          yield { runUpdated: run };
        }
      },
    },
  },
  Run: {
    model: (run, _, ctx) => loadModel(ctx, run.modelId),
    dataset: (run, _, ctx) => loadDataset(ctx, run.datasetId),
    checkpointCount: (run, _, ctx) => ctx.loaders.checkpointCountByRun.load(run.id),
    checkpoints: (run, args, ctx) => listCheckpoints(ctx, run.id, args),
  },
};
