import { readFileSync } from 'node:fs';
import { mergeResolvers } from '@graphql-tools/merge';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { Resolvers } from './generated/types.js';
import { apiKeyResolvers } from './api-keys/resolvers.js';
import { checkpointResolvers } from './checkpoints/resolvers.js';
import { computeResolvers } from './terms/resolvers.js';
import { connectionFields } from '../platform/graphql/connections.js';
import { curationResolvers } from './curation/resolvers.js';
import { datasetResolvers } from './datasets/resolvers.js';
import { ingestResolvers } from './ingest/resolvers.js';
import { modelResolvers } from './models/resolvers.js';
import { runResolvers } from './runs/resolvers.js';
import { trainResolvers } from './training/resolvers.js';
import { torchImportResolvers } from './checkpoints/torch-import-resolvers.js';
import { Base64, DateTime, FloatArray, JSON as JSONScalar } from '../platform/graphql/scalars.js';
import { VERSION } from '../platform/version.js';

export const SCHEMA_PATH = new URL('../../schema.graphql', import.meta.url);

/** Each domain owns its resolver map, Query and Mutation fields included; they merge here. */
const shared: Resolvers = {
    DateTime,
    JSON: JSONScalar,
    FloatArray,
    Base64,
    Query: {
      serverInfo: (_, __, ctx) => ({ version: VERSION, database: ctx.db.kind }),
    },
    DatasetConnection: connectionFields,
    SampleConnection: connectionFields,
    ModelConnection: connectionFields,
    RunConnection: connectionFields,
    CheckpointConnection: connectionFields,
    SampleMetricConnection: connectionFields,
};

export const resolvers = mergeResolvers([
  shared,
  datasetResolvers,
  modelResolvers,
  runResolvers,
  checkpointResolvers,
  ingestResolvers,
  computeResolvers,
  apiKeyResolvers,
  curationResolvers,
  trainResolvers,
  torchImportResolvers,
]) as Resolvers;

export function buildSchema() {
  return makeExecutableSchema({ typeDefs: readFileSync(SCHEMA_PATH, 'utf8'), resolvers: resolvers as never });
}
