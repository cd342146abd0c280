import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import type { MetricColumns } from '../terms/metrics.js';
import { TERMS } from '../../platform/values/term.js';
import { BadUserInputError } from '../../platform/errors.js';
import * as ingest from './service.js';
import { loadDataset } from '../datasets/service.js';
import { loadCheckpoint } from '../checkpoints/service.js';
import { loadModel } from '../models/service.js';
import { loadRun } from '../runs/service.js';
import type { Resolvers } from '../generated/types.js';
import { optionalId, parseId } from '../../platform/graphql/inputs.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Strict standard base64 to aligned bytes. Node's decoder skips characters it does not know, so
 * the text is checked first (one regular-expression pass; cheap next to the decode itself).
 */
function decodeColumn(value: string, what: string, width: number): ArrayBuffer {
  if (value.length % 4 !== 0 || !BASE64.test(value)) throw new BadUserInputError(`${what} is not valid base64`);
  const bytes = Buffer.from(value, 'base64');
  if (bytes.byteLength % width !== 0) throw new BadUserInputError(`A base64 ${what} holds ${width}-byte values; ${bytes.byteLength} bytes is not a whole number of them`);
  // A Buffer may sit at any offset of a shared pool: copy into a fresh, aligned buffer.
  const aligned = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(aligned).set(bytes);
  return aligned;
}

function listLiteral(ast: ValueNode, what: string): unknown {
  if (ast.kind === Kind.STRING) return ast.value;
  if (ast.kind === Kind.LIST) {
    return ast.values.map((v) => {
      if (v.kind === Kind.INT || v.kind === Kind.FLOAT) return Number(v.value);
      if (v.kind === Kind.STRING) return v.value;
      throw new BadUserInputError(`A ${what} literal holds numbers`);
    });
  }
  throw new BadUserInputError(`A ${what} is a list of numbers or a base64 string`);
}

function toFloatColumn(value: unknown): Float32Array {
  if (typeof value === 'string') return new Float32Array(decodeColumn(value, 'FloatColumn', 4));
  if (!Array.isArray(value)) throw new BadUserInputError('A FloatColumn is a list of numbers or a base64 string of little-endian float32');
  const out = new Float32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    // Finiteness is checked with the batch, which names the row; here only the type.
    if (typeof v !== 'number') throw new BadUserInputError(`A FloatColumn holds numbers; element ${i} is ${JSON.stringify(v)}`, undefined, { row: i });
    out[i] = v;
  }
  return out;
}

const MIN_INT32 = -2_147_483_648;
const MAX_INT32 = 2_147_483_647;

function toIntColumn(value: unknown): Int32Array {
  if (typeof value === 'string') return new Int32Array(decodeColumn(value, 'IntColumn', 4));
  if (!Array.isArray(value)) throw new BadUserInputError('An IntColumn is a list of integers or a base64 string of little-endian int32');
  const out = new Int32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?[0-9]{1,10}$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isInteger(n) || n < MIN_INT32 || n > MAX_INT32) {
      throw new BadUserInputError(`An IntColumn holds 32-bit integers; element ${i} is ${JSON.stringify(v)}`, undefined, { row: i });
    }
    out[i] = n;
  }
  return out;
}

export const FloatColumn = new GraphQLScalarType<Float32Array, number[]>({
  name: 'FloatColumn',
  description: 'float32 values for bulk writes: a JSON array of numbers, or base64 of little-endian float32.',
  serialize: (value) => Array.from(value as ArrayLike<number>),
  parseValue: toFloatColumn,
  parseLiteral: (ast) => toFloatColumn(listLiteral(ast, 'FloatColumn')),
});

export const IntColumn = new GraphQLScalarType<Int32Array, number[]>({
  name: 'IntColumn',
  description: 'int32 values for bulk writes: a JSON array of integers (or decimal strings), or base64 of little-endian int32.',
  serialize: (value) => Array.from(value as ArrayLike<number>),
  parseValue: toIntColumn,
  parseLiteral: (ast) => toIntColumn(listLiteral(ast, 'IntColumn')),
});

export const ingestResolvers: Resolvers = {
  FloatColumn,
  IntColumn,
  Query: {
    ingestLimits: (_, __, ctx) => ({ maxRows: ctx.config.maxBulkRows, maxBodyBytes: ctx.config.maxBodyBytes }),
  },
  Mutation: {
    logMetrics: async (_, { checkpointId, input }, ctx) => {
      const id = parseId(checkpointId, 'checkpointId');
      const batch: MetricColumns = { columns: {} };
      if (input.sampleIds) batch.sampleIds = input.sampleIds;
      if (input.sampleIndices) batch.sampleIndices = input.sampleIndices;
      for (const t of TERMS) {
        const column = input[t.field];
        if (column !== null && column !== undefined) batch.columns[t.field] = column;
      }
      const written = await ingest.logMetrics(ctx, id, batch);
      return { checkpointId: id, written };
    },
    addSamplesBulk: (_, { datasetId, input }, ctx) =>
      ingest.addSamplesBulk(ctx, parseId(datasetId, 'datasetId'), {
        indices: input.indices,
        labels: input.labels,
        splits: input.splits ?? input.split ?? 'train',
        series: input.series,
        originalLengths: input.originalLengths ?? null,
      }),
    importUcr: (_, { input }, ctx) => ingest.importUcr(ctx, input),
    importTfjsModel: (_, { input }, ctx) =>
      ingest.importTfjsModel(ctx, {
        ...input,
        runId: optionalId(input.runId, 'input.runId'),
        datasetId: optionalId(input.datasetId, 'input.datasetId'),
      }),
  },
  AddSamplesBulkPayload: {
    dataset: (payload, _, ctx) => loadDataset(ctx, payload.datasetId),
  },
  ImportUcrPayload: {
    dataset: (payload, _, ctx) => loadDataset(ctx, payload.datasetId),
  },
  ImportTfjsModelPayload: {
    model: (payload, _, ctx) => loadModel(ctx, payload.modelId),
    run: (payload, _, ctx) => (payload.runId === null ? null : loadRun(ctx, payload.runId)),
    checkpoint: (payload, _, ctx) => (payload.checkpointId === null ? null : loadCheckpoint(ctx, payload.checkpointId)),
  },
};
