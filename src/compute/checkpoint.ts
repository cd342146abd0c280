/**
 * The stored checkpoint format: a tfjs model.json topology, the weight specs of its weights
 * manifest ({name, shape, dtype} in order) and one buffer with all weight bytes, concatenated in
 * spec order (little-endian float32 unless a spec says otherwise).
 */
import * as tf from '@tensorflow/tfjs';
import { buildArchitecture } from './architectures.js';
import type { ArchitectureName } from './architectures.js';
import './layers.js';
import { prepareModel } from './model.js';
import type { EngineModel } from './model.js';

/** Weights of one checkpoint. */
export interface StoredWeights {
  /** `weightsManifest[].weights` of a model.json, flattened, in byte order. */
  weightSpecs: tf.io.WeightsManifestEntry[];
  /** All weight bytes (an ArrayBuffer or a view of one, e.g. a Node Buffer). */
  weightData: ArrayBuffer | ArrayBufferView;
}

/** A model with its weights: topology (the `modelTopology` of a model.json) plus weights. */
export interface StoredModel extends StoredWeights {
  modelTopology: object;
}

/** Where a model comes from: a stored topology, or a built-in architecture by name. */
export type ModelSource =
  | StoredModel
  | { modelTopology: object; weightSpecs?: undefined; weightData?: undefined }
  | { architecture: ArchitectureName; config?: Record<string, unknown>; weightSpecs?: tf.io.WeightsManifestEntry[]; weightData?: ArrayBuffer | ArrayBufferView };

function toArrayBuffer(data: ArrayBuffer | ArrayBufferView): ArrayBuffer {
  if (data instanceof ArrayBuffer) return data;
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return copy.buffer;
}

/** Flattens `weightsManifest` groups of a model.json into one spec list. */
export function weightSpecsOf(modelJson: { weightsManifest?: Array<{ weights: tf.io.WeightsManifestEntry[] }> }): tf.io.WeightsManifestEntry[] {
  return (modelJson.weightsManifest ?? []).flatMap((g) => g.weights);
}

/**
 * Serialises a model to the stored format (topology JSON, weight specs, weight bytes).
 * @returns `{ modelTopology, weightSpecs, weightData }`; weightData is one ArrayBuffer.
 */
export async function serializeModel(model: tf.LayersModel): Promise<StoredModel & { weightData: ArrayBuffer }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (artifacts?.modelTopology === undefined || artifacts.weightSpecs === undefined || artifacts.weightData === undefined) {
    throw new Error('serializeModel: tfjs returned no topology or weights');
  }
  return {
    modelTopology: artifacts.modelTopology as object,
    weightSpecs: artifacts.weightSpecs,
    weightData: tf.io.CompositeArrayBuffer.join(artifacts.weightData),
  };
}

/** The model.json document of a stored model (weights in one file named `weightsPath`). */
export function modelJsonOf(stored: StoredModel, weightsPath = 'weights.bin'): tf.io.ModelJSON {
  return {
    modelTopology: stored.modelTopology,
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    weightsManifest: [{ paths: [weightsPath], weights: stored.weightSpecs }],
  };
}

/**
 * Loads a checkpoint's weights into an already loaded model (same architecture). `partial`: the
 * specs name only some of the model's weights (the layers that changed since the weights it holds),
 * and the others keep their values; otherwise every weight must be given.
 */
export function loadWeights(m: EngineModel, weights: StoredWeights, partial = false): void {
  const named = tf.io.decodeWeights(toArrayBuffer(weights.weightData), weights.weightSpecs);
  try {
    if (partial) {
      // tfjs skips, without a word, a name it cannot place when not strict: check every one lands.
      const known = new Set(m.model.weights.map((w) => w.originalName));
      const stray = Object.keys(named).filter((name) => !known.has(name));
      if (stray.length > 0) throw new Error(`weights ${stray.slice(0, 3).join(', ')} are not in the model`);
    }
    m.model.loadWeights(named, !partial);
  } finally {
    tf.dispose(Object.values(named));
  }
}

/**
 * Loads a model for the engine: from a stored topology (with or without weights) or from a
 * built-in architecture name and config (seeded initial weights unless weights are given).
 */
export async function loadModel(source: ModelSource): Promise<EngineModel> {
  if ('architecture' in source) {
    const m = prepareModel(buildArchitecture(source.architecture, source.config ?? {}));
    if (source.weightSpecs !== undefined && source.weightData !== undefined) {
      loadWeights(m, { weightSpecs: source.weightSpecs, weightData: source.weightData });
    }
    return m;
  }
  if (source.weightSpecs === undefined || source.weightData === undefined) {
    const model = await tf.models.modelFromJSON({ modelTopology: source.modelTopology } as tf.io.ModelJSON);
    return prepareModel(model);
  }
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: source.modelTopology,
      weightSpecs: source.weightSpecs,
      weightData: toArrayBuffer(source.weightData),
    }),
  );
  return prepareModel(model);
}
