import * as torchImport from './torch-import.js';
import { loadCheckpoint } from './service.js';
import type { Resolvers } from '../generated/types.js';
import { optionalId } from '../../platform/graphql/inputs.js';
import { loadModel } from '../models/service.js';
import { loadRun } from '../runs/service.js';

export const torchImportResolvers: Resolvers = {
  Mutation: {
    importSafetensors: (_, { input }, ctx) =>
      torchImport.importSafetensors(ctx, {
        ...input,
        runId: optionalId(input.runId, 'input.runId'),
        datasetId: optionalId(input.datasetId, 'input.datasetId'),
      }),
  },
  ImportSafetensorsPayload: {
    model: (payload, _, ctx) => loadModel(ctx, payload.modelId),
    run: (payload, _, ctx) => loadRun(ctx, payload.runId),
    checkpoint: (payload, _, ctx) => loadCheckpoint(ctx, payload.checkpointId),
  },
};
