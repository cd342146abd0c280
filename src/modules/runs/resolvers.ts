import { refreshLoaders, type Context } from '../context.js';
import { invariant, NotFoundError } from '../../platform/errors.js';
import { listCheckpoints, listRuns } from '../lists.js';
import * as runs from './service.js';
import { loadDataset } from '../datasets/resolvers.js';
import type { Resolvers } from '../generated/types.js';
import { optionalId, parseId, parseInput, RunInput, UpdateRunInput } from '../../platform/graphql/inputs.js';

export const runResolvers: Resolvers = {
  Query: {
    run: (_, { id }, ctx) => ctx.loaders.runById.load(parseId(id)),
    runs: (_, { first, after, filter }, ctx) =>
      listRuns(ctx, {
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

export async function loadModel(ctx: Context, id: number) {
  const model = await ctx.loaders.modelById.load(id);
  invariant(model, `model ${id} is referenced but missing`);
  return model;
}

export async function loadRun(ctx: Context, id: number) {
  const run = await ctx.loaders.runById.load(id);
  invariant(run, `run ${id} is referenced but missing`);
  return run;
}
