import * as torchImport from '../services/torch-import.js';
import { loadCheckpoint } from './checkpoints.js';
import type { Resolvers } from './generated/types.js';
import { optionalId } from './inputs.js';
import { loadModel, loadRun } from './runs.js';

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
