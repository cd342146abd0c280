/**
 * Train a small TensorFlow.js model on a UCR data set and log the run to Tangent as it trains:
 *
 *   npx tsx examples/node/log-run.ts --url http://127.0.0.1:4000/graphql --epochs 20
 *
 * The dataset's samples go up in bulk; the model is registered from its model.json topology
 * (importTfjsModel, which also makes the run and its step-0 checkpoint); after every epoch the
 * weights become a checkpoint and every sample of both splits gets its loss, whether the
 * prediction is right, and its logits, in one columnar request. Tangent can then compute the terms
 * nobody logged (kNorm, gNorm, …) from the stored checkpoints.
 *
 * Flags: --url, --api-key, --train/--test (UCR .ts files; default ItalyPowerDemand from the
 * repository's datasets/ucr), --epochs (20), --name. The last line printed is one JSON object with the ids.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { TangentClient, type WeightSpec } from './tangent-client.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const UCR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'datasets', 'ucr');
const url = option('url', 'http://127.0.0.1:4000/graphql');
const epochs = Number(option('epochs', '20'));
const name = option('name', `node-example-${Date.now()}`);
const learningRate = 0.01;
const batchSize = 16;

/** A UCR/UEA .ts file: class names and (label, time-major series) rows. */
function readUcr(file: string) {
  let classes: string[] = [];
  let inData = false;
  const rows: { label: number; series: number[] }[] = [];
  let length = 0;
  let channels = 0;
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (!inData) {
      if (/^@classlabel/i.test(line)) classes = line.split(/\s+/).slice(2);
      if (/^@data/i.test(line)) inData = true;
      continue;
    }
    const dims = line.split(':');
    const label = classes.indexOf(dims.pop()!.trim());
    const columns = dims.map((d) => d.split(',').map(Number));
    channels = columns.length;
    length = columns[0]!.length;
    const series: number[] = [];
    for (let t = 0; t < length; t++) for (let c = 0; c < channels; c++) series.push(columns[c]![t]!);
    rows.push({ label, series });
  }
  return { classes, rows, length, channels };
}

/** The model's artifacts as tfjs saves them: topology, weight specs, one weight buffer. */
async function artifactsOf(model: tf.LayersModel) {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => ((saved = a), { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })));
  return {
    modelTopology: saved!.modelTopology as object,
    weightSpecs: saved!.weightSpecs as WeightSpec[],
    weightData: new Uint8Array(tf.io.CompositeArrayBuffer.join(saved!.weightData!)),
  };
}

async function main() {
  const train = readUcr(option('train', path.join(UCR, 'ItalyPowerDemand_TRAIN.ts')));
  const test = readUcr(option('test', path.join(UCR, 'ItalyPowerDemand_TEST.ts')));
  const { length, channels, classes } = train;
  const rows = [...train.rows, ...test.rows];
  const n = rows.length;
  const V = classes.length;
  const series = new Float32Array(n * length * channels);
  rows.forEach((r, i) => series.set(r.series, i * length * channels));
  const labels = Int32Array.from(rows, (r) => r.label);

  const tangent = new TangentClient(url, option('api-key', '') || undefined);
  // Samples are numbered 0…n−1, train first: the positions the metrics below refer to.
  const datasetId = await tangent.createDataset({ name, length, channels, classNames: classes });
  await tangent.addSamples(datasetId, {
    indices: Int32Array.from({ length: n }, (_, i) => i),
    labels,
    splits: rows.map((_, i) => (i < train.rows.length ? 'train' : 'test')),
    series,
  });

  const model = tf.sequential({
    name: 'italy_cnn',
    layers: [
      tf.layers.conv1d({ inputShape: [length, channels], filters: 16, kernelSize: 9, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
      tf.layers.globalAveragePooling1d(),
      tf.layers.dense({ units: V, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(learningRate), loss: (y: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, logits) });
  const x = tf.tensor3d(series, [n, length, channels]);
  const yTrain = tf.oneHot(tf.tensor1d(labels.subarray(0, train.rows.length), 'int32'), V);
  const xTrain = x.slice([0, 0, 0], [train.rows.length, length, channels]);

  /** Loss, correctness and logits of every sample at the current weights, logged at `checkpointId`. */
  async function logMetrics(checkpointId: string) {
    const logits = tf.tidy(() => model.predict(x) as tf.Tensor2D);
    const logProbs = tf.tidy(() => tf.logSoftmax(logits));
    const [z, lp] = [(await logits.data()) as Float32Array, (await logProbs.data()) as Float32Array];
    tf.dispose([logits, logProbs]);
    const loss = new Float32Array(n);
    const correct: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const label = labels[i]!;
      loss[i] = -lp[i * V + label]!;
      let best = 0;
      for (let k = 1; k < V; k++) if (z[i * V + k]! > z[i * V + best]!) best = k;
      correct.push(best === label);
    }
    await tangent.logMetrics(checkpointId, Int32Array.from({ length: n }, (_, i) => i), { loss, correct, logits: z }, V);
    return { meanLoss: loss.reduce((a, b) => a + b, 0) / n, accuracy: correct.filter(Boolean).length / n };
  }

  const initial = await artifactsOf(model);
  const imported = await tangent.importTfjsModel({
    modelJson: { format: 'layers-model', modelTopology: initial.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: initial.weightSpecs }] },
    weightData: initial.weightData,
    datasetId,
    runName: name,
    modelName: name,
    step: 0,
  });
  const runId = imported.runId!;
  await tangent.request('mutation($id: ID!, $c: RunConfigInput) { updateRun(id: $id, input: { status: RUNNING, config: $c }) { id } }', {
    id: runId,
    c: { learningRate, optimizer: 'adam', epochs, batchSize, seed: 1 },
  });
  const checkpoints = [imported.checkpointId!];
  await logMetrics(imported.checkpointId!);

  let step = 0;
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      await model.fit(xTrain, yTrain, { epochs: 1, batchSize, shuffle: true, verbose: 0 });
      step += Math.ceil(train.rows.length / batchSize);
      const { weightSpecs, weightData } = await artifactsOf(model);
      const checkpointId = await tangent.createCheckpoint({ runId, step, epoch, learningRate, weightSpecs, weightData });
      checkpoints.push(checkpointId);
      const { meanLoss, accuracy } = await logMetrics(checkpointId);
      process.stderr.write(`epoch ${epoch}: step ${step}, mean loss ${meanLoss.toFixed(4)}, accuracy ${accuracy.toFixed(3)}, checkpoint ${checkpointId}\n`);
    }
  } catch (error) {
    await tangent.setRunStatus(runId, 'FAILED');
    throw error;
  }
  await tangent.setRunStatus(runId, 'COMPLETED');
  tf.dispose([x, yTrain, xTrain]);
  process.stdout.write(`${JSON.stringify({ datasetId, modelId: imported.modelId, runId, checkpoints, samples: n })}\n`);
}

await main();
