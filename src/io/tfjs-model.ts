import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * TensorFlow.js layers-model artifacts as `model.save()` and the converters write them: a
 * model.json with `modelTopology` (Keras-style JSON) and `weightsManifest` (groups of weight
 * specs with the shard files that hold them), plus the shard files. This module reads the
 * document and states what Tangent needs from it; it runs no tensors.
 */
export interface WeightSpecJson {
  name: string;
  shape: number[];
  dtype: string;
}

export interface TfjsModelJson {
  modelTopology: { class_name: string; config: unknown; [key: string]: unknown };
  weightsManifest?: { paths: string[]; weights: WeightSpecJson[] }[];
  format?: string;
  [key: string]: unknown;
}

export class TfjsModelError extends Error {
  constructor(
    message: string,
    /** The part of model.json to blame, e.g. `modelTopology` or `weightsManifest[0].paths`. */
    readonly path: string,
  ) {
    super(message);
    this.name = 'TfjsModelError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Checks the parts of a model.json Tangent reads; the rest is kept as it is. */
export function parseModelJson(value: unknown): TfjsModelJson {
  if (!isObject(value)) throw new TfjsModelError('model.json must be a JSON object', '');
  const topology = value.modelTopology;
  if (!isObject(topology) || typeof topology.class_name !== 'string' || !('config' in topology)) {
    throw new TfjsModelError('model.json needs a layers-model `modelTopology` ({class_name, config, …}); graph models are not supported', 'modelTopology');
  }
  if (value.format !== undefined && value.format !== 'layers-model') {
    throw new TfjsModelError(`model.json has format ${JSON.stringify(value.format)}; only layers-model is supported`, 'format');
  }
  const manifest = value.weightsManifest;
  if (manifest !== undefined) {
    if (!Array.isArray(manifest)) throw new TfjsModelError('weightsManifest must be a list of {paths, weights}', 'weightsManifest');
    manifest.forEach((group, g) => {
      if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
        throw new TfjsModelError('each weightsManifest entry has `paths` and `weights` lists', `weightsManifest[${g}]`);
      }
      group.weights.forEach((spec, w) => {
        if (!isObject(spec) || typeof spec.name !== 'string' || !Array.isArray(spec.shape) || typeof spec.dtype !== 'string') {
          throw new TfjsModelError('a weight spec is {name, shape, dtype}', `weightsManifest[${g}].weights[${w}]`);
        }
        if (isObject(spec.quantization)) throw new TfjsModelError('quantized weights are not supported', `weightsManifest[${g}].weights[${w}]`);
      });
    });
  }
  return value as TfjsModelJson;
}

/** The weight specs in buffer order (the manifest's groups one after another). */
export function weightSpecsOfModelJson(modelJson: TfjsModelJson): WeightSpecJson[] {
  return (modelJson.weightsManifest ?? []).flatMap((group) => group.weights);
}

/** The shard files in the order their bytes are concatenated. */
export function weightPathsOfModelJson(modelJson: TfjsModelJson): string[] {
  return (modelJson.weightsManifest ?? []).flatMap((group) => group.paths);
}

type LayerJson = { class_name?: string; name?: string; config?: Record<string, unknown>; inbound_nodes?: unknown };

function layersOf(topology: TfjsModelJson['modelTopology']): LayerJson[] {
  const config = topology.config;
  if (Array.isArray(config)) return config as LayerJson[]; // Keras 1 Sequential: the config is the list
  if (isObject(config) && Array.isArray(config.layers)) return config.layers as LayerJson[];
  return [];
}

function batchShapeOf(layer: LayerJson | undefined): unknown[] | null {
  const c = layer?.config;
  if (!c) return null;
  const shape = c.batch_input_shape ?? c.batchInputShape ?? c.batch_shape;
  if (Array.isArray(shape)) return shape;
  const input = c.input_shape ?? c.inputShape;
  return Array.isArray(input) ? [null, ...input] : null;
}

const layerName = (layer: LayerJson) => layer.name ?? (layer.config?.name as string | undefined);

/** The name of the layer a functional layer takes its (first) input from. */
function inboundOf(layer: LayerJson): string | null {
  const nodes = layer.inbound_nodes;
  if (!Array.isArray(nodes) || !Array.isArray(nodes[0])) return null;
  const first = (nodes[0] as unknown[])[0];
  if (Array.isArray(first) && typeof first[0] === 'string') return first[0];
  if (isObject(first) && Array.isArray(first.args)) {
    // Keras 3: {args: [{class_name: '__keras_tensor__', config: {keras_history: [name, 0, 0]}}]}
    const history = (first.args[0] as { config?: { keras_history?: unknown[] } } | undefined)?.config?.keras_history;
    if (Array.isArray(history) && typeof history[0] === 'string') return history[0];
  }
  return null;
}

export interface ModelShape {
  /** The model's name in the topology, if it has one. */
  name: string | null;
  inputLength: number | null;
  channels: number | null;
  numClasses: number | null;
}

/**
 * What a topology says about the model's input ([batch, length, channels]) and its class count
 * (the `units` of the output layer, or of the nearest layer before it that has units: a softmax
 * Activation after the head does not hide it). Null where the topology does not say plainly.
 */
export function modelShapeOf(modelJson: TfjsModelJson): ModelShape {
  const topology = modelJson.modelTopology;
  const layers = layersOf(topology);
  const config = isObject(topology.config) ? topology.config : {};
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  const ref = (list: unknown): string | null => (Array.isArray(list) && Array.isArray(list[0]) && typeof list[0][0] === 'string' ? list[0][0] : null);

  const sequential = topology.class_name === 'Sequential';
  const inputLayer = sequential ? layers[0] : byName.get(ref(config.input_layers) ?? '') ?? layers.find((l) => l.class_name === 'InputLayer');
  const shape = batchShapeOf(inputLayer);
  const dims = shape && shape.length === 3 && shape.slice(1).every((d) => Number.isInteger(d) && (d as number) > 0) ? (shape.slice(1) as number[]) : null;

  let numClasses: number | null = null;
  if (sequential) {
    for (let i = layers.length - 1; i >= 0 && numClasses === null; i--) {
      const units = layers[i]!.config?.units;
      if (Number.isInteger(units)) numClasses = units as number;
    }
  } else {
    let layer = byName.get(ref(config.output_layers) ?? '');
    for (let hops = 0; layer && hops < layers.length && numClasses === null; hops++) {
      const units = layer.config?.units;
      if (Number.isInteger(units)) numClasses = units as number;
      else layer = byName.get(inboundOf(layer) ?? '');
    }
  }
  return {
    name: typeof config.name === 'string' ? config.name : null,
    inputLength: dims?.[0] ?? null,
    channels: dims?.[1] ?? null,
    numClasses,
  };
}

/** JSON with object keys sorted, so that equal documents compare equal as text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .filter((key) => value[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A fingerprint of the architecture: the topology's class and layers, not the library versions
 * that wrote it (`keras_version`, `backend`), so the same model saved by two tfjs versions matches.
 */
export function topologyHash(modelJson: TfjsModelJson): string {
  const { class_name, config } = modelJson.modelTopology;
  return createHash('sha256').update(canonicalJson({ class_name, config })).digest('hex');
}

/**
 * Reads the weight shards of a model.json from disk and concatenates them in manifest order:
 * the files the manifest names (relative to model.json), or `files` in the order given.
 */
export async function readWeightShards(
  modelJsonPath: string,
  modelJson: TfjsModelJson,
  files?: readonly string[],
  onFile?: (bytes: number) => void,
): Promise<Buffer> {
  const paths = files?.length ? files.map((f) => resolve(f)) : weightPathsOfModelJson(modelJson).map((p) => resolve(dirname(modelJsonPath), p));
  const parts: Buffer[] = [];
  for (const path of paths) {
    const bytes = await readFile(path);
    parts.push(bytes);
    onFile?.(bytes.byteLength);
  }
  return Buffer.concat(parts);
}
