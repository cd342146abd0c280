import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * A BUILTIN model's config is checked against the data set's shape before anything is written:
 * createModel, createRun, trainRun and `tangent train --architecture` refuse a config the engine
 * could not build, with BAD_USER_INPUT, the values in the message and the config key in
 * `extensions.field`, and no model, run or training is left behind.
 */
let t: TestServer;
before(async () => {
  t = await startTestServer({ env: { TANGENT_WORKER: 'off' } });
});
after(() => t?.close());

const BIN = new URL('../../bin/tangent.js', import.meta.url).pathname;
const CREATE_MODEL = `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`;
const LENGTH = 27;

/** A data set of length 27 (3³), one channel, 2 classes, 4 training samples. */
async function dataset(name: string) {
  const { createDataset } = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id name } }`, {
    input: {
      name,
      length: LENGTH,
      classNames: ['a', 'b'],
      samples: [0, 1, 2, 3].map((index) => ({ index, label: index % 2, series: Array.from({ length: LENGTH }, (_, j) => Math.sin(index + j)) })),
    },
  });
  return createDataset as { id: string; name: string };
}

/** How many models, runs and trainings exist (a refusal must leave all three as they were). */
async function counts() {
  const { models, runs } = await t.gql(`{ models { totalCount } runs(first: 1000) { totalCount nodes { training { epochs } } } }`);
  return { models: models.totalCount, runs: runs.totalCount, trainings: runs.nodes.filter((r: any) => r.training !== null).length };
}

test('createModel refuses a BUILTIN config that cannot be built for its shape, naming the values and the key', async () => {
  const before = await counts();
  const shape = { inputLength: LENGTH, channels: 1, numClasses: 2 };
  const refused = async (architecture: string, config: Record<string, unknown>, field: string, message: RegExp) => {
    const res = await t.request(CREATE_MODEL, { input: { name: `bad-${architecture}-${field}`, format: 'BUILTIN', architecture, config, ...shape } });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT'], JSON.stringify(res));
    const error = res.errors![0]!;
    assert.equal(error.extensions?.field, field);
    assert.match(error.message, message);
    assert.equal(error.extensions?.architecture, architecture);
  };
  // The report: the transformer's default patch (16) on a length it does not divide; the divisors of 27 are offered.
  await refused('transformer', {}, 'input.config.patch', /^transformer: length 27 is not a multiple of patch 16 \(choose patch among 1, 3, 9, 27, or resample the data set\)$/);
  await refused('transformer', { patch: 3, dim: 6, heads: 4 }, 'input.config.heads', /dim 6 is not divisible by heads 4 \(choose heads among 1, 2, 3, 6\)/);
  await refused('transformer', { patch: 3, mlpDim: 0 }, 'input.config.mlpDim', /transformer: mlpDim must be an integer ≥ 1; got 0/);
  // cnn1d: pooling by 4 after two of three layers takes 27 steps to 6, then 1; by 8, to 3 then 0.
  await refused('cnn1d', { filters: [2, 2, 2], kernelSizes: [3, 3, 3], pool: 8 }, 'input.config.pool', /length 27 pooled by 8 after each of the first 2 Conv1D layers leaves no time step \(it needs length ≥ 64/);
  await refused('cnn1d', { filters: [2, 2], kernelSizes: [3] }, 'input.config.kernelSizes', /kernelSizes has 1 entries and filters 2/);
  await refused('cnn1d', { filters: [2, 0], kernelSizes: [3, 3] }, 'input.config.filters', /filters must be a non-empty list of integers ≥ 1; got \[2,0\]/);
  await refused('cnn1d', { dropout: 1 }, 'input.config.dropout', /dropout must be a number in \[0, 1\); got 1/);
  // A misspelt option would otherwise be ignored without a word.
  await refused('cnn1d', { kernelSize: [3] }, 'input.config.kernelSize', /cnn1d: unknown config option 'kernelSize' \(known: filters, kernelSizes, pool, dropout, seed\)/);
  // Mantis: 32 patches of a length-27 series; patches need at least 2 steps each, so 27 in 27 is refused too.
  await refused('mantis', {}, 'input.config.patches', /mantis: length 27 must be a multiple of patches 32 \(choose patches among 1, 3, 9, or resample the data set\)/);
  await refused('mantis', { patches: 27 }, 'input.config.patches', /patches need at least 2 time steps each .*length 27 in 27 patches gives 1/);
  await refused('resnet', {}, 'input.architecture', /Tangent has no built-in architecture 'resnet' \(known: cnn1d, transformer, mantis\)/);
  assert.deepEqual(await counts(), before);

  // Every problem is listed, the first names the field.
  const both = await t.request(CREATE_MODEL, { input: { name: 'two-problems', format: 'BUILTIN', architecture: 'transformer', config: { patch: 5, heads: 3 }, ...shape } });
  assert.equal(both.errors![0]!.extensions?.field, 'input.config.patch');
  assert.equal((both.errors![0]!.extensions?.problems as string[]).length, 2);

  // Configs that fit are stored; a kernel longer than the series is fine (the convolutions pad).
  for (const [architecture, config] of [
    ['transformer', { patch: 9, dim: 8, heads: 2, depth: 1, mlpDim: 8 }],
    ['cnn1d', { filters: [2, 2, 2], kernelSizes: [40, 3, 3], pool: 5 }],
    ['mantis', { patches: 9, dim: 8, depth: 1, heads: 1, headDim: 8, mlpDim: 8, scalarDim: 2 }],
  ] as const) {
    const res = await t.request(CREATE_MODEL, { input: { name: `good-${architecture}`, format: 'BUILTIN', architecture, config, ...shape } });
    assert.equal(res.errors, undefined, JSON.stringify(res.errors));
  }
  assert.equal((await counts()).models, before.models + 3);
});

test('trainRun and createRun refuse a stored model that cannot be built, before writing a run', async () => {
  const ds = await dataset(`legacy-${process.pid}`);
  const { createModel } = await t.gql(CREATE_MODEL, {
    input: { name: `legacy-${process.pid}`, format: 'BUILTIN', architecture: 'transformer', config: { patch: 3, dim: 8, heads: 2, depth: 1, mlpDim: 8 }, inputLength: LENGTH, channels: 1, numClasses: 2 },
  });
  // A model stored before configs were checked: its row says patch 16.
  await t.db.sql.query(`UPDATE model SET config = config || '{"patch": 16}'::jsonb WHERE id = $1`, [Number(createModel.id)]);
  const before = await counts();
  const train = await t.request(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, { input: { modelId: createModel.id, datasetId: ds.id, epochs: 1 } });
  assert.deepEqual(codes(train), ['BAD_USER_INPUT']);
  assert.equal(train.errors![0]!.extensions?.field, 'input.modelId');
  assert.equal(train.errors![0]!.extensions?.configKey, 'patch');
  assert.match(train.errors![0]!.message, new RegExp(`^Model ${createModel.id} cannot be built: transformer: length 27 is not a multiple of patch 16`));
  const run = await t.request(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, { input: { name: 'legacy-run', modelId: createModel.id, datasetId: ds.id } });
  assert.deepEqual(codes(run), ['BAD_USER_INPUT']);
  assert.match(run.errors![0]!.message, /length 27 is not a multiple of patch 16/);
  assert.deepEqual(await counts(), before);
});

test('tangent train --architecture transformer through a server: refused with the values named, nothing written', async () => {
  const ds = await dataset(`cli-${process.pid}`);
  const before = await counts();
  const { DATABASE_URL: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, [BIN, 'train', '--dataset', ds.name, '--architecture', 'transformer', '--epochs', '1', '--url', t.url.replace(/\/graphql$/, ''), '--no-progress'], {
    env: { ...env, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdout!.resume();
  try {
    const [code] = await once(child, 'exit');
    assert.equal(code, 1, stderr);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  assert.match(stderr, /transformer: length 27 is not a multiple of patch 16 \(choose patch among 1, 3, 9, 27, or resample the data set\)/);
  assert.deepEqual(await counts(), before);
});
