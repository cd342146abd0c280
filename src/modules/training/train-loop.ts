/**
 * The training loop of runs that Tangent trains itself: a tfjs layers model, mini-batch gradient
 * steps on a fixed set of samples, and a stop at every planned point (plan.ts) that hands back the
 * weights in the stored format and the engine's forward terms of the samples it covers.
 *
 * Deterministic given the seed on one backend: the initial weights (a BUILTIN architecture's seeded
 * initialisers; a topology's initialisers and every other tfjs random draw, dropout included, come
 * from `Math.random`, replaced by a seeded stream while the loop runs), the order of samples in each
 * epoch (a seeded permutation) and the kernels (tfjs cpu and wasm ops are deterministic) are all
 * fixed. The loop replaces `Math.random` for its whole life, so it runs on a thread of its own
 * (thread.ts); a test may run it in-process.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModel, logitsFromTrunk, outputs, outputTerms, serializeModel, subsetsOf, trunkFeatures } from '../../compute/index.js';
import type { FineTuning } from './storage.js';
import type { BackendInfo, BackendPreference, EngineModel, ModelSource, OutputTerms } from '../../compute/index.js';
import { permutation, seededRandom, STREAM, streamSeed, trainPlan, type PlannedPoint, type TrainPlan } from './train-plan.js';

export type TrainOptimizer = 'sgd' | 'adam' | 'adamw';

/** Everything the loop needs; plain data, so it can cross to a worker thread. */
export interface TrainTask {
  backend: BackendPreference;
  /** The model and, for fine-tuning, the weights it starts from. */
  model: ModelSource;
  /** The trained samples, [n, length, channels], sample-major. */
  x: Float32Array;
  /** Their labels, [n]. */
  labels: Int32Array;
  /** Positions in `x` of the samples finer tracking follows (ascending; empty without it). */
  tracked: readonly number[];
  optimizer: TrainOptimizer;
  learningRate: number;
  /** AdamW's decoupled weight decay (ignored by the other optimizers). */
  weightDecay: number;
  epochs: number;
  batchSize: number;
  seed: number;
  analyzeEvery: number;
  /** Analysis every k steps instead of every `analyzeEvery` epochs (null: by epochs). */
  analyzeEverySteps: number | null;
  trackEverySteps: number | null;
  /** What training moves: every trainable weight, or a named parameter subset (the rest frozen). */
  fineTuning: FineTuning;
}

/** The forward terms of the rows a point covers (the engine's `outputs`, without matrices). */
export type PointTerms = Pick<OutputTerms, 'logits' | 'probs' | 'aNorm' | 'hTrace' | 'hMinEig'> & {
  loss: Float32Array;
  correct: Uint8Array;
  gNorm: Float32Array;
};

export type TrainEvent =
  | {
      type: 'start';
      backend: BackendInfo;
      /** Parameters the optimizer moves (all trainable ones, or the fine-tuning mode's). */
      parameters: number;
      plan: TrainPlan;
      /** Whether the frozen trunk's output was computed once and the steps run the head alone. */
      trunkCached: boolean;
    }
  | {
      type: 'point';
      point: PlannedPoint;
      /** The weights now, in the stored format (`weightsManifest` specs + little-endian bytes). */
      weightSpecs: tf.io.WeightsManifestEntry[];
      weightData: ArrayBuffer;
      /** Positions in the task's `x` of the rows `terms` holds, ascending. */
      rows: Int32Array;
      terms: PointTerms;
    }
  | {
      type: 'epoch';
      epoch: number;
      /** Optimizer steps done. */
      step: number;
      /** Mean loss and accuracy over the epoch's batches, in training mode (as the optimizer saw them). */
      loss: number;
      accuracy: number;
    };

/** A failure that training again cannot fix (divergence, a model that does not fit the data). */
export class TrainingError extends Error {
  readonly permanent = true;
  constructor(message: string) {
    super(message);
    this.name = 'TrainingError';
  }
}

function optimizerOf(task: TrainTask): tf.Optimizer {
  switch (task.optimizer) {
    case 'sgd':
      return tf.train.sgd(task.learningRate);
    case 'adam':
    case 'adamw':
      return tf.train.adam(task.learningRate);
  }
}

/** Mean cross-entropy of a batch: on logits, or on probabilities when the model ends in a softmax. */
function lossOf(out: tf.Tensor, y: tf.Tensor, onProbabilities: boolean): tf.Scalar {
  if (!onProbabilities) return tf.losses.softmaxCrossEntropy(y, out) as tf.Scalar;
  return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.log(tf.clipByValue(out, 1e-7, 1))), -1))) as tf.Scalar;
}

/** The rows at `positions` of a sample-major array of `per` values per row. */
function gather(x: Float32Array, positions: ArrayLike<number>, per: number): Float32Array {
  const out = new Float32Array(positions.length * per);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    out.set(x.subarray(p * per, (p + 1) * per), i * per);
  }
  return out;
}

/**
 * The layers of a fine-tuned subset when they are a chain at the end of the model: the first takes
 * one tensor from the frozen trunk, each next one takes the previous one's output alone, and the last
 * gives the model's output (Mantis's head_norm → head). Then the trunk's output can be computed once
 * and the steps run the chain alone; null otherwise (an adapter before the encoder, a skip around it).
 */
function tailChain(model: tf.LayersModel, layers: readonly string[]): tf.layers.Layer[] | null {
  if (layers.length === 0 || model.outputLayers.length !== 1) return null;
  const chain = layers.map((name) => model.getLayer(name));
  if (chain.at(-1) !== model.outputLayers[0]) return null;
  for (let i = 0; i < chain.length; i++) {
    const layer = chain[i]!;
    if (layer.inboundNodes.length !== 1 || layer.inboundNodes[0]!.inboundLayers.length !== 1) return null;
    if (i > 0 && layer.inboundNodes[0]!.inboundLayers[0] !== chain[i - 1]) return null;
    if (i < chain.length - 1 && (layer.outboundNodes.length !== 1 || layer.outboundNodes[0]!.outboundLayer !== chain[i + 1])) return null;
  }
  return chain;
}

/** Values per sample entering a layer (its one input, flattened). */
function inputWidth(layer: tf.layers.Layer): number {
  const shape = layer.inboundNodes[0]!.inputShapes[0] as (number | null)[];
  return shape.slice(1).reduce<number>((a, d) => a * (d ?? NaN), 1);
}

/**
 * Trains and yields: `start` once, then for each planned point a `point` (step 0 first) and an
 * `epoch` after every epoch (before that epoch's analysis point). A consumer that stops iterating
 * stops the training; the model and optimizer are released either way.
 */
export async function* trainLoop(task: TrainTask): AsyncGenerator<TrainEvent, void, undefined> {
  const restoreRandom = Math.random;
  Math.random = seededRandom(streamSeed(task.seed, STREAM.tfjs));
  let m: EngineModel | undefined;
  let optimizer: tf.Optimizer | undefined;
  try {
    const backend = await initBackend(task.backend, () => undefined);
    try {
      m = await loadModel(task.model);
    } catch (error) {
      throw new TrainingError(`the model cannot be built: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`);
    }
    const [length, channels] = m.inputShape;
    const per = length * channels;
    const n = task.labels.length;
    const V = m.classes;
    if (n === 0 || task.x.length !== n * per) throw new TrainingError(`${task.x.length} values are not ${n} samples of ${length} × ${channels}`);
    for (const y of task.labels) if (y < 0 || y >= V) throw new TrainingError(`label ${y} is not one of the model's ${V} classes`);
    const plan = trainPlan({
      samples: n,
      epochs: task.epochs,
      batchSize: task.batchSize,
      analyzeEvery: task.analyzeEvery,
      analyzeEverySteps: task.analyzeEverySteps,
      trackEverySteps: task.trackEverySteps,
    });
    const model = m.model;
    const engine = m;
    const onProbabilities = m.graph.tail !== 'logits';

    // What moves: every trainable weight, or the layers of the fine-tuning mode's subset (the rest
    // are left out of the optimizer, so they stay bit for bit).
    const subset = task.fineTuning === 'full' ? null : task.fineTuning;
    let trained = model.layers;
    if (subset !== null) {
      const info = subsetsOf(m.graph).find((s) => s.name === subset);
      if (!info || info.layers.length === 0) throw new TrainingError(`the model has no '${subset}' parameters to fine-tune (it answers to ${subsetsOf(m.graph).map((s) => s.name).join(', ')})`);
      const names = new Set(info.layers);
      trained = model.layers.filter((l) => names.has(l.name));
    }
    const vars = trained.flatMap((l) => l.trainableWeights.map((w) => w.read() as tf.Variable));
    const parameters = vars.reduce((a, v) => a + v.size, 0);

    // Head fine-tuning: the frozen trunk runs once, in inference mode, on every trained sample (and
    // the tracked ones are among them); the steps and the points run the head chain on its output.
    let chain: tf.layers.Layer[] | null = null;
    let features: Float32Array | null = null;
    let width = 0;
    if (subset !== null) {
      const tail = tailChain(model, trained.map((l) => l.name));
      if (tail) {
        const t = await trunkFeatures(m, task.x, { subset });
        if (t.saves && t.width === inputWidth(tail[0]!)) {
          chain = tail;
          features = t.features;
          width = t.width;
        }
      }
    }
    yield { type: 'start', backend, parameters, plan, trunkCached: chain !== null };
    optimizer = optimizerOf(task);
    const opt = optimizer;
    const decay = task.optimizer === 'adamw' ? 1 - task.learningRate * task.weightDecay : 1;
    const shuffle = seededRandom(streamSeed(task.seed, STREAM.shuffle));
    const all = Int32Array.from({ length: n }, (_, i) => i);
    const tracked = Int32Array.from(task.tracked);
    const trackedX = gather(task.x, tracked, per);
    const trackedY = Int32Array.from(tracked, (p) => task.labels[p]!);
    const trackedFeatures = features ? gather(features, tracked, width) : null;

    let next = 0;
    const pointsAt = async function* (step: number): AsyncGenerator<TrainEvent> {
      while (plan.points[next]?.step === step) {
        const point = plan.points[next++]!;
        const full = point.kind === 'analysis';
        const t = features
          ? outputTerms(await Promise.resolve(logitsFromTrunk(engine, full ? features : trackedFeatures!, { subset: subset!, width })), V, full ? task.labels : trackedY)
          : await outputs(engine, full ? task.x : trackedX, full ? task.labels : trackedY);
        const stored = await serializeModel(model);
        yield {
          type: 'point',
          point,
          weightSpecs: stored.weightSpecs,
          weightData: stored.weightData,
          rows: full ? all.slice() : tracked.slice(),
          terms: { logits: t.logits, probs: t.probs, aNorm: t.aNorm, hTrace: t.hTrace, hMinEig: t.hMinEig, loss: t.loss!, correct: t.correct!, gNorm: t.gNorm! },
        };
      }
    };

    yield* pointsAt(0);
    let step = 0;
    for (let epoch = 1; epoch <= task.epochs; epoch++) {
      const order = permutation(n, shuffle);
      let lossSum = 0;
      let correctSum = 0;
      for (let start = 0; start < n; start += task.batchSize) {
        const batch = order.subarray(start, Math.min(n, start + task.batchSize));
        const b = batch.length;
        const labels = Int32Array.from(batch, (p) => task.labels[p]!);
        let predicted: tf.Tensor | undefined;
        const { value, grads } = tf.tidy(() => {
          const xb = features ? tf.tensor2d(gather(features, batch, width), [b, width]) : tf.tensor3d(gather(task.x, batch, per), [b, length, channels]);
          const yb = tf.oneHot(tf.tensor1d(labels, 'int32'), V);
          return tf.variableGrads(() => {
            const out = chain ? chain.reduce<tf.Tensor>((h, layer) => layer.apply(h, { training: true }) as tf.Tensor, xb) : (model.apply(xb, { training: true }) as tf.Tensor);
            predicted = tf.keep(tf.argMax(out, -1));
            return lossOf(out, yb, onProbabilities);
          }, vars);
        });
        // AdamW as PyTorch has it: decay every weight by (1 − η·λ), then the Adam step with the
        // gradients taken before the decay.
        if (decay !== 1) tf.tidy(() => vars.forEach((v) => v.assign(tf.mul(v, decay))));
        opt.applyGradients(grads);
        const loss = (await value.data())[0]!;
        const guess = (await predicted!.data()) as Int32Array;
        tf.dispose([value, predicted!, ...Object.values(grads)]);
        step++;
        if (!Number.isFinite(loss)) {
          throw new TrainingError(`the loss became ${loss} at epoch ${epoch}, step ${step}: lower the learning rate`);
        }
        lossSum += loss * b;
        for (let i = 0; i < b; i++) if (guess[i] === labels[i]) correctSum++;
        if (start + task.batchSize < n) yield* pointsAt(step);
      }
      yield { type: 'epoch', epoch, step, loss: lossSum / n, accuracy: correctSum / n };
      yield* pointsAt(step);
    }
  } finally {
    optimizer?.dispose();
    m?.dispose();
    Math.random = restoreRandom;
  }
}
