import { readFileSync } from 'node:fs';
import { mergeResolvers } from '@graphql-tools/merge';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { Resolvers } from './generated/types.js';
import { apiKeyResolvers } from './api-keys.js';
import { checkpointResolvers } from './checkpoints.js';
import { computeResolvers } from './compute.js';
import { connectionFields } from './connections.js';
import { curationResolvers } from './curation.js';
import { datasetResolvers } from './datasets.js';
import { ingestResolvers } from './ingest.js';
import { modelResolvers } from './models.js';
import { runResolvers } from './runs.js';
import { trainResolvers } from './train.js';
import { torchImportResolvers } from './torch-import.js';
import { Base64, DateTime, FloatArray, JSON as JSONScalar } from './scalars.js';
import { VERSION } from '../version.js';

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
