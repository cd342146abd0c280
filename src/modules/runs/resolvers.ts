import type { GraphQLResolveInfo } from 'graphql';
import { refreshLoaders, type Context } from '../context.js';
import { selectedChildArgs } from '../../platform/graphql/lookahead.js';
import { pageSize } from '../../platform/graphql/pagination.js';
import { NotFoundError } from '../../platform/errors.js';
import { listCheckpoints } from '../checkpoints/service.js';
import * as runs from './service.js';
import { loadDataset } from '../datasets/service.js';
import { loadModel } from '../models/service.js';
import type { Resolvers } from '../generated/types.js';
import { optionalId, parseId, parseInput, RunInput, UpdateRunInput } from '../../platform/graphql/inputs.js';

/** How many checkpoints to read with the run: the page `checkpoints(first)` asks for, plus one (is there a next page?); null when it asks for none or for a later page. */
function firstCheckpointsAsked(ctx: Context, info: GraphQLResolveInfo): number | null {
  const args = selectedChildArgs(info, 'checkpoints');
  if (!args || (args.after !== undefined && args.after !== null)) return null;
  try {
    return pageSize(args.first as number | null | undefined, ctx.config.maxPageSize) + 1;
  } catch {
    return null; // a bad `first`: the field itself refuses it
  }
}

export const runResolvers: Resolvers = {
  Query: {
    // A client asking for a run with a first page of its checkpoints gets both from one statement.
    run: (_, { id }, ctx, info) => runs.findRun(ctx, parseId(id), firstCheckpointsAsked(ctx, info)),
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
