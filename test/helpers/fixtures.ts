import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readUcrFile, type UcrDataset } from '../../src/io/ucr.js';
import type { TestServer } from './server.js';

/** The UCR data sets shipped in datasets/ucr; tests that need them fail loudly when one is missing. */
export const UCR_DIR = fileURLToPath(new URL('../../datasets/ucr/', import.meta.url));

/** The path of a shipped UCR file (`GunPoint_TRAIN`), or an error naming the file that is missing. */
export function ucrPath(name: string): string {
  const path = `${UCR_DIR}${name}.ts`;
  if (!existsSync(path)) {
    throw new Error(`The UCR data set ${path} is missing: tests read datasets/ucr in the repository`);
  }
  return path;
}

export async function readUcr(name: string): Promise<UcrDataset> {
  return readUcrFile(ucrPath(name));
}

export const CREATE_DATASET = /* GraphQL */ `
  mutation CreateDataset($input: CreateDatasetInput!) {
    createDataset(input: $input) { id name length channels classNames sampleCount }
  }
`;

/** Creates a dataset from a UCR file (train split), returning its id and the parsed file. */
export async function createUcrDataset(t: TestServer, file: string, name = `${file}-${Math.random().toString(36).slice(2, 8)}`) {
  const ucr = await readUcr(file);
  const data = await t.gql<{ createDataset: { id: string } }>(CREATE_DATASET, {
    input: {
      name,
      length: ucr.length,
      channels: ucr.channels,
      classNames: ucr.classNames,
      samples: ucr.series.map((s, index) => ({ index, label: s.label, split: 'train', series: Array.from(s.values) })),
    },
  });
  return { datasetId: data.createDataset.id, ucr };
}

/** A model, a run and nothing else, fitting a dataset's shape. */
export async function createModelAndRun(t: TestServer, dataset: { id: string; length: number; channels: number; classes: number }) {
  const suffix = Math.random().toString(36).slice(2, 8);
  const { createModel } = await t.gql<{ createModel: { id: string } }>(
    `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`,
    {
      input: {
        name: `model-${suffix}`,
        format: 'BUILTIN',
        architecture: 'cnn1d',
        config: { filters: [8], kernelSizes: [3] },
        inputLength: dataset.length,
        channels: dataset.channels,
        numClasses: dataset.classes,
      },
    },
  );
  const { createRun } = await t.gql<{ createRun: { id: string } }>(
    `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`,
    { input: { name: `run-${suffix}`, modelId: createModel.id, datasetId: dataset.id, config: { learningRate: 0.001, optimizer: 'adam', epochs: 3, batchSize: 16, seed: 7 } } },
  );
  return { modelId: createModel.id, runId: createRun.id };
}

/** Error codes of a response, in order. */
export function codes(response: { errors?: { extensions?: Record<string, any> }[] }): string[] {
  return (response.errors ?? []).map((e) => String(e.extensions?.code));
}
