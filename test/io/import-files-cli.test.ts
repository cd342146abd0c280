import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModel } from '../../src/compute/index.js';
import { createModelAndRun, UCR_DIR } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** `tangent import metrics|tfjs-model` as a user runs it: a child process talking to a running server. */
const BIN = fileURLToPath(new URL('../../bin/tangent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tangent-import-'));
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const merged: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'silent', ...env };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'import', ...args], { env: merged as NodeJS.ProcessEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const ucr = (name: string) => `${UCR_DIR}${name}.ts`;

/** GunPoint (train and test) imported over GraphQL, once per file. */
let gunPointId: string | null = null;
async function gunPoint(): Promise<string> {
  if (gunPointId) return gunPointId;
  const files = ['GunPoint_TRAIN', 'GunPoint_TEST'].map((name) => ({ text: readFileSync(ucr(name), 'utf8'), fileName: `${name}.ts` }));
  const res = await t.gql(`mutation($input: ImportUcrInput!) { importUcr(input: $input) { dataset { id } } }`, { input: { files } });
  gunPointId = res.importUcr.dataset.id as string;
  return gunPointId;
}

describe('tangent import metrics and tfjs-model', () => {
  test('metrics from CSV and JSONL, in batches; a bad line is named and its batch not written', async () => {
    const datasetId = await gunPoint();
    const { runId } = await createModelAndRun(t, { id: datasetId, length: 150, channels: 1, classes: 2 });
    const { createCheckpoint } = await t.gql(`mutation($r: ID!) { createCheckpoint(input: { runId: $r, step: 1, weightSpecs: [], weightData: "" }) { id } }`, { r: runId });
    const checkpoint = createCheckpoint.id;

    const csv = join(dir, 'metrics.csv');
    const lines = ['sample_index,loss,correct,logits_0,logits_1'];
    for (let i = 0; i < 200; i++) lines.push(`${i},${(i / 100).toFixed(3)},${i % 2 ? 'true' : 'false'},${i * 0.5},-${i}`);
    writeFileSync(csv, `${lines.join('\n')}\n`);
    const logged = await cli(['metrics', csv, '--checkpoint', checkpoint, '--url', t.url, '--batch', '75', '--json']);
    assert.equal(logged.code, 0, logged.stderr);
    assert.deepEqual(JSON.parse(logged.stdout), { checkpointId: checkpoint, rows: 200, requests: 3 });

    const samples = await t.db.sql.query<{ id: number; index: number }>('SELECT id, index FROM sample WHERE dataset_id = $1 ORDER BY index', [Number(datasetId)]);
    const jsonl = join(dir, 'metrics.jsonl');
    writeFileSync(jsonl, samples.map((s) => JSON.stringify({ sampleId: s.id, kNorm: s.index + 0.25, probs: [0.25, 0.75] })).join('\n'));
    const fromJsonl = await cli(['metrics', jsonl, '--checkpoint', checkpoint, '--url', t.url, '--json']);
    assert.equal(fromJsonl.code, 0, fromJsonl.stderr);

    const stored = await t.db.sql.query<{ index: number; loss: number; correct: boolean; logits: number[]; probs: number[]; k_norm: number }>(
      `SELECT s.index, m.loss, m.correct, m.logits, m.probs, m.k_norm FROM sample_metric m JOIN sample s ON s.id = m.sample_id WHERE m.checkpoint_id = $1 ORDER BY s.index`,
      [Number(checkpoint)],
    );
    assert.equal(stored.length, 200);
    for (const row of stored) {
      const i = Number(row.index);
      assert.equal(Math.fround(row.loss), Math.fround(i / 100));
      assert.equal(row.correct, i % 2 === 1);
      assert.deepEqual(row.logits, [i * 0.5, -i]);
      assert.deepEqual(row.probs, [0.25, 0.75]);
      assert.equal(row.k_norm, i + 0.25);
    }

    // Line 5 of this file names a sample that is not in the dataset: that batch is refused whole.
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'sample_index,loss\n0,9\n1,9\n2,9\n99999,9\n4,9\n');
    const refused = await cli(['metrics', bad, '--checkpoint', checkpoint, '--url', t.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /bad\.csv line 5: Row 3: sampleIndex 99999/);
    const after = await t.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_metric WHERE checkpoint_id = $1 AND loss = 9', [Number(checkpoint)]);
    assert.equal(after[0]!.n, 0);
  });

  test('a TensorFlow.js model from model.json and two weight shards: topology, shape, bit-exact weights the engine loads', async () => {
    const datasetId = await gunPoint();
    await initBackend('cpu', () => undefined);
    const model = tf.sequential({
      name: 'gunpoint_cnn',
      layers: [
        tf.layers.conv1d({ inputShape: [150, 1], filters: 4, kernelSize: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
        tf.layers.globalAveragePooling1d(),
        tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
        tf.layers.activation({ activation: 'softmax' }),
      ],
    });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => ((artifacts = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
    const bytes = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts!.weightData!));
    const cut = 44; // after the conv kernel's first 11 values: shards need not align with tensors
    writeFileSync(join(dir, 'group1-shard1of2.bin'), bytes.subarray(0, cut));
    writeFileSync(join(dir, 'group1-shard2of2.bin'), bytes.subarray(cut));
    const modelJsonPath = join(dir, 'model.json');
    writeFileSync(
      modelJsonPath,
      JSON.stringify({
        format: 'layers-model',
        generatedBy: 'test',
        modelTopology: artifacts!.modelTopology,
        weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: artifacts!.weightSpecs }],
      }),
    );
    const imported = await cli(['tfjs-model', modelJsonPath, '--dataset', datasetId, '--step', '5', '--url', t.url, '--json']);
    assert.equal(imported.code, 0, imported.stderr);
    const result = JSON.parse(imported.stdout);
    assert.equal(result.inputLength, 150);
    assert.equal(result.channels, 1);
    assert.equal(result.numClasses, 2);
    assert.equal(result.weightBytes, bytes.byteLength);
    assert.match(result.modelName, /^gunpoint_cnn-[0-9a-f]{8}$/);

    const read = await t.gql(
      `query($m: ID!, $c: ID!) { model(id: $m) { format topology } checkpoint(id: $c) { step run { id dataset { id } } weights { specs data } } }`,
      { m: result.modelId, c: result.checkpointId },
    );
    assert.equal(read.model.format, 'TFJS_LAYERS');
    assert.equal(read.checkpoint.step, 5);
    assert.equal(read.checkpoint.run.dataset.id, datasetId);
    const stored = Buffer.from(read.checkpoint.weights.data, 'base64');
    assert.ok(stored.equals(bytes), 'the weights are the shards concatenated, bit-exact');

    // The engine loads what was stored and predicts exactly what the original model does.
    const loaded = await loadModel({ modelTopology: read.model.topology, weightSpecs: read.checkpoint.weights.specs, weightData: stored });
    const x = tf.randomNormal([3, 150, 1], 0, 1, 'float32', 9);
    const want = await (model.predict(x) as tf.Tensor).data();
    const got = await (loaded.model.predict(x) as tf.Tensor).data();
    assert.deepEqual(Array.from(got), Array.from(want));

    // A later checkpoint of the same run reuses the model; a different topology for that run is refused.
    const modelJson = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
    const later = await t.gql(`mutation($input: ImportTfjsModelInput!) { importTfjsModel(input: $input) { model { id } checkpoint { step weightSha256 } } }`, {
      input: { modelJson, weightData: bytes.toString('base64'), runId: result.runId, step: 6 },
    });
    assert.equal(later.importTfjsModel.model.id, result.modelId);
    assert.equal(later.importTfjsModel.checkpoint.step, 6);
    const other = JSON.parse(JSON.stringify(artifacts!.modelTopology));
    other.config.layers[2].config.units = 3;
    const otherPath = join(dir, 'other.json');
    writeFileSync(otherPath, JSON.stringify({ modelTopology: other }));
    const refused = await t.request(`mutation($input: ImportTfjsModelInput!) { importTfjsModel(input: $input) { model { id } } }`, {
      input: { modelJson: { modelTopology: other }, runId: result.runId },
    });
    assert.equal(refused.errors?.[0]?.extensions?.code, 'BAD_USER_INPUT');
    assert.match(refused.errors![0]!.message, /topology differs/);
    const noShape = await t.request(`mutation($input: ImportTfjsModelInput!) { importTfjsModel(input: $input) { model { id } } }`, {
      input: { modelJson: { modelTopology: { class_name: 'Sequential', config: { layers: [{ class_name: 'Dense', config: { units: 2 } }] } } } },
    });
    assert.equal(noShape.errors?.[0]?.extensions?.field, 'input.inputLength');
  });
});
