import { bytesToFloat32 } from '../../platform/float32.js';
import * as datasets from './service.js';
import { listRuns } from '../runs/service.js';
import type { Resolvers } from '../generated/types.js';
import { DatasetInput, parseId, parseInput, SampleFields } from '../../platform/graphql/inputs.js';
import { z } from 'zod';

const Samples = z.array(SampleFields);

export const datasetResolvers: Resolvers = {
  Query: {
    dataset: (_, { id }, ctx) => ctx.loaders.datasetById.load(parseId(id)),
    datasets: (_, { first, after, filter }, ctx) => datasets.listDatasets(ctx, { first, after, nameContains: filter?.nameContains }),
    sample: (_, { id }, ctx) => ctx.loaders.sampleById.load(parseId(id)),
  },
  Mutation: {
    createDataset: (_, { input }, ctx) => {
      const dataset = parseInput(DatasetInput, input, 'input');
      const samples = parseInput(Samples, input.samples ?? [], 'input.samples');
      return datasets.createDataset(ctx, dataset, samples);
    },
    addSamples: async (_, args, ctx) => {
      const datasetId = parseId(args.datasetId, 'datasetId');
      const samples = parseInput(Samples, args.samples, 'samples');
      const added = await datasets.addSamples(ctx, datasetId, samples);
      return { datasetId, added };
    },
    deleteDataset: async (_, { id }, ctx) => {
      await datasets.deleteDataset(ctx, parseId(id));
      return { id };
    },
  },
  AddSamplesPayload: {
    dataset: async (payload, _, ctx) => datasets.loadDataset(ctx, payload.datasetId),
  },
  Dataset: {
    sampleCount: (dataset, { split }, ctx) => ctx.loaders.sampleCount.load(split ? `${dataset.id}/${split}` : `${dataset.id}`),
    splits: (dataset, _, ctx) => ctx.loaders.splitsByDataset.load(dataset.id),
    samples: (dataset, args, ctx) => datasets.listSamples(ctx, dataset.id, args),
    runs: (dataset, args, ctx) => listRuns(ctx, { ...args, where: { datasetId: dataset.id } }),
    lengthPolicy: (dataset) => (dataset.lengthResample ? { length: dataset.length, resample: dataset.lengthResample } : null),
  },
  Sample: {
    dataset: (sample, _, ctx) => datasets.loadDataset(ctx, sample.datasetId),
    className: async (sample, _, ctx) => (await datasets.loadDataset(ctx, sample.datasetId)).classNames[sample.label] ?? String(sample.label),
    series: (sample) => bytesToFloat32(sample.series),
  },
};
