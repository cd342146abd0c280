/**
 * importSafetensors over HTTP: a PyTorch Mantis checkpoint (the stored fixture) becomes a BUILTIN
 * model, a run and a checkpoint; the server then computes logits and kNorm equal to PyTorch's.
 * Refusals name every problem. Runs on PGlite, and on PostgreSQL with DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes, CREATE_DATASET } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { fixtureCases, maxRel, specsOf, writeSafetensors } from './safetensors-helpers.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t?.close());

const IMPORT = /* GraphQL */ `
  mutation($input: ImportSafetensorsInput!) {
    importSafetensors(input: $input) {
      model { id name format architecture config inputLength channels numClasses }
      run { id name }
      checkpoint { id step }
      mapped
      ignored { name reason }
    }
  }
`;

const TERMS = /* GraphQL */ `
  query($id: ID!, $ids: [ID!]!) {
    checkpoint(id: $id) { sampleTerms(sampleIds: $ids, terms: [LOGITS, K_NORM], waitMs: 60000) { sample { id index } logits kNorm } }
  }
`;

const suffix = () => Math.random().toString(36).slice(2, 8);

/** A dataset holding a fixture's inputs as samples 0…n−1. */
async function datasetOf(c: ReturnType<typeof fixtureCases>[number]) {
  const length = c.config['length'] as number;
  const channels = c.config['channels'] as number;
  const classes = c.config['classes'] as number;
  const per = length * channels;
  const { createDataset } = await t.gql(CREATE_DATASET, {
    input: {
      name: `torch-${c.name}-${suffix()}`,
      length,
      channels,
      classNames: Array.from({ length: classes }, (_, i) => `c${i}`),
      samples: Array.from({ length: c.n }, (_, i) => ({ index: i, label: i % classes, split: 'train', series: Array.from(c.x.subarray(i * per, (i + 1) * per)) })),
    },
  });
  const { dataset } = await t.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 100) { nodes { id index } } } }`, { id: createDataset.id });
  const ids = (dataset.samples.nodes as Array<{ id: string; index: number }>).sort((a, b) => a.index - b.index).map((s) => s.id);
  return { id: createDataset.id as string, ids };
}

describe('importSafetensors', () => {
  const mantis = fixtureCases().find((c) => c.name === 'mantis')!;
  const { length: _l, channels: _c, classes: _k, ...mantisConfig } = mantis.config;

  test('a PyTorch Mantis checkpoint: BUILTIN model, run and checkpoint; the server computes PyTorch’s logits and kNorm', async () => {
    const ds = await datasetOf(mantis);
    const { importSafetensors: r } = await t.gql(IMPORT, {
      input: { datasetId: ds.id, architecture: 'mantis', config: mantisConfig, safetensors: mantis.bytes.toString('base64'), step: 5, learningRate: 2e-4 },
    });
    assert.equal(r.model.format, 'BUILTIN');
    assert.equal(r.model.architecture, 'mantis');
    assert.match(r.model.name, /^mantis-torch-[0-9a-f]{8}$/);
    assert.deepEqual([r.model.inputLength, r.model.channels, r.model.numClasses], [64, 1, 3]);
    assert.equal(r.model.config.dim, 16, 'the full config is stored, defaults included');
    assert.equal(r.model.config.scalarEpsilon, 1.1);
    assert.equal(r.model.config.length, undefined, 'the shape lives in the model’s columns');
    assert.equal(r.run.name, r.model.name);
    assert.equal(r.checkpoint.step, 5);
    assert.equal(r.mapped + r.ignored.length, mantis.file.tensors.size);
    assert.ok(r.ignored.some((i: { name: string; reason: string }) => i.name === 'encoder.prj.0.weight' && /pre-training projector/.test(i.reason)));

    const { checkpoint } = await t.gql(TERMS, { id: r.checkpoint.id, ids: ds.ids });
    const rows = checkpoint.sampleTerms as Array<{ logits: number[]; kNorm: number }>;
    const logitsRel = maxRel(rows.flatMap((x) => x.logits), mantis.expected.logits);
    const kRel = maxRel(rows.map((x) => x.kNorm), mantis.expected.kNorm['all']!);
    assert.ok(logitsRel <= 1e-4, `server logits vs PyTorch: ${logitsRel.toExponential(2)}`);
    assert.ok(kRel <= 1e-4, `server kNorm vs PyTorch: ${kRel.toExponential(2)}`);

    // A later checkpoint of the same run, by runId; the run's model gives the config.
    const { importSafetensors: again } = await t.gql(IMPORT, { input: { runId: r.run.id, architecture: 'mantis', safetensors: mantis.bytes.toString('base64'), step: 6 } });
    assert.equal(again.run.id, r.run.id);
    assert.equal(again.model.id, r.model.id);
    assert.equal(again.checkpoint.step, 6);
    // A config given with runId must be the model's (its seed and dropout aside).
    const seeded = await t.gql(IMPORT, { input: { runId: r.run.id, architecture: 'mantis', config: { ...mantisConfig, seed: 99, dropout: 0 }, safetensors: mantis.bytes.toString('base64'), step: 7 } });
    assert.equal(seeded.importSafetensors.checkpoint.step, 7);
    const differs = await t.request(IMPORT, { input: { runId: r.run.id, architecture: 'mantis', config: { ...mantisConfig, scalarEpsilon: 1.2 }, safetensors: mantis.bytes.toString('base64'), step: 8 } });
    assert.deepEqual(codes(differs), ['BAD_USER_INPUT']);
    assert.match(differs.errors![0]!.message, /config differs from that of run \d+'s model mantis-torch-/);
    assert.equal(differs.errors![0]!.extensions!.field, 'input.config');
    // The same model name on another dataset of that shape reuses the model.
    const ds2 = await datasetOf(mantis);
    const { importSafetensors: reuse } = await t.gql(IMPORT, { input: { datasetId: ds2.id, architecture: 'mantis', config: mantisConfig, modelName: r.model.name, runName: 'second', safetensors: mantis.bytes.toString('base64') } });
    assert.equal(reuse.model.id, r.model.id);
    assert.equal(reuse.run.name, 'second');
  });

  test('cnn1d and transformer checkpoints of plain PyTorch models import too', async () => {
    for (const c of fixtureCases().filter((x) => x.architecture !== 'mantis')) {
      const ds = await datasetOf(c);
      const { length: _a, channels: _b, classes: _d, ...config } = c.config;
      const { importSafetensors: r } = await t.gql(IMPORT, { input: { datasetId: ds.id, architecture: c.architecture, config, safetensors: c.bytes.toString('base64') } });
      assert.equal(r.model.architecture, c.architecture);
      const { checkpoint } = await t.gql(TERMS, { id: r.checkpoint.id, ids: ds.ids });
      const rel = maxRel((checkpoint.sampleTerms as Array<{ logits: number[] }>).flatMap((x) => x.logits), c.expected.logits);
      assert.ok(rel <= 1e-4, `${c.name}: server logits vs PyTorch ${rel.toExponential(2)}`);
    }
  });

  test('refusals: the file’s problems listed, bad files, configs and targets named, nothing written', async () => {
    const ds = await datasetOf(mantis);
    const tensors = specsOf(mantis.file);
    delete tensors['head.1.bias'];
    tensors['encoder.tokgen_unit.convs.0.conv.bias'] = { dtype: 'F32', shape: [15], values: new Float32Array(15) };
    const broken = writeSafetensors(tensors).toString('base64');
    const modelName = `refused-${suffix()}`;
    const res = await t.request(IMPORT, { input: { datasetId: ds.id, architecture: 'mantis', config: mantisConfig, modelName, safetensors: broken } });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    const ext = res.errors![0]!.extensions!;
    assert.equal(ext.field, 'input.safetensors');
    assert.deepEqual(ext.problems, [
      "tensor 'encoder.tokgen_unit.convs.0.conv.bias' has shape [15]; mantis with this config needs [16]",
      "missing tensor 'head.1.bias' ([3], for head/bias)",
    ]);
    const { models } = await t.gql(`query($n: String!) { models(filter: { nameContains: $n }) { totalCount } }`, { n: modelName });
    assert.equal(models.totalCount, 0, 'a refused import writes nothing');

    const bad = async (input: Record<string, unknown>, field: string, message: RegExp) => {
      const r = await t.request(IMPORT, { input: { datasetId: ds.id, architecture: 'mantis', config: mantisConfig, safetensors: mantis.bytes.toString('base64'), ...input } });
      assert.deepEqual(codes(r), ['BAD_USER_INPUT'], JSON.stringify(r.errors));
      assert.equal(r.errors![0]!.extensions!.field, field);
      assert.match(r.errors![0]!.message, message);
    };
    await bad({ safetensors: Buffer.from('not a safetensors file at all').toString('base64') }, 'input.safetensors', /^safetensors: header length \d+ exceeds the 100000000-byte limit/);
    await bad({ architecture: 'resnet' }, 'input.architecture', /mantis, cnn1d, transformer; got 'resnet'/);
    await bad({ config: { ...mantisConfig, length: 128 } }, 'input.config', /config.length is 128 but the length is 64/);
    await bad({ config: { ...mantisConfig, patches: 5 } }, 'input.config', /length 64 must be a multiple of patches 5/);
    await bad({ config: { ...mantisConfig, hiddenDim: 16 } }, 'input.config', /config.hiddenDim is not an option of mantis; its options: length, channels, classes, patches, dim/);
    await bad({ config: { ...mantisConfig, dim: 8 } }, 'input.safetensors', /does not fit mantis/);
    await bad({ runId: '1' }, 'input.runId', /exactly one of them/);
    const cnnRun = await t.gql(IMPORT, { input: { datasetId: (await datasetOf(fixtureCases().find((x) => x.name === 'cnn1d')!)).id, architecture: 'cnn1d', config: { filters: [4, 5, 3], kernelSizes: [4, 3, 2], pool: 2 }, safetensors: fixtureCases().find((x) => x.name === 'cnn1d')!.bytes.toString('base64') } });
    await bad({ datasetId: null, runId: cnnRun.importSafetensors.run.id }, 'input.runId', /is not a BUILTIN mantis model/);
    const other = await t.request(IMPORT, { input: { datasetId: ds.id, architecture: 'mantis', config: mantisConfig, modelName: cnnRun.importSafetensors.model.name, safetensors: mantis.bytes.toString('base64') } });
    assert.deepEqual(codes(other), ['CONFLICT']);
  });
});
