import * as models from './service.js';
import { listRuns } from '../runs/service.js';
import { parameterSubsets } from '../terms/subsets.js';
import type { Resolvers } from '../generated/types.js';
import { ModelInput, parseId, parseInput } from '../../platform/graphql/inputs.js';

export const modelResolvers: Resolvers = {
  Query: {
    model: (_, { id }, ctx) => ctx.loaders.modelById.load(parseId(id)),
    models: (_, { first, after, filter }, ctx) =>
      models.listModels(ctx, { first, after, format: filter?.format, nameContains: filter?.nameContains }),
  },
  Mutation: {
    createModel: (_, { input }, ctx) => models.createModel(ctx, parseInput(ModelInput, input, 'input')),
    deleteModel: async (_, { id }, ctx) => {
      await models.deleteModel(ctx, parseId(id));
      return { id };
    },
  },
  Model: {
    runs: (model, args, ctx) => listRuns(ctx, { ...args, where: { modelId: model.id } }),
    parameterSubsets: (model, _, ctx) => parameterSubsets(ctx, model),
  },
};
