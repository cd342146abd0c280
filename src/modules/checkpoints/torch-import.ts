import { createHash } from 'node:crypto';
import type { Context } from '../context.js';
import type { Model } from '../../platform/db/generated/client.js';
import { BadUserInputError, ConflictError, NotFoundError } from '../../platform/errors.js';
import { readSafetensors, SafetensorsError } from '../../io/safetensors.js';
import type { SafetensorsFile } from '../../io/safetensors.js';
import { canonicalJson } from '../../io/tfjs-model.js';
import { importTorchWeights, TORCH_ARCHITECTURES, TORCH_DEFAULTS, torchImportTable, TorchImportError } from '../../io/torch-import.js';
import type { TorchArchitecture } from '../../io/torch-import.js';
import { CheckpointInput, ModelInput, parseInput, RunInput } from '../../platform/graphql/inputs.js';
import { createCheckpoint } from './service.js';
import { createModel, discardModel, modelByName } from '../models/service.js';
import { createRun, discardRun } from '../runs/service.js';

export interface ImportSafetensorsInput {
  safetensors: Buffer;
  architecture: string;
  config?: unknown;
  runId?: number | null;
  datasetId?: number | null;
  modelName?: string | null;
  runName?: string | null;
  step?: number | null;
  epoch?: number | null;
  learningRate?: number | null;
}

/** What the payload resolves from (codegen mapper). */
export interface ImportSafetensorsPayloadRow {
  modelId: number;
  runId: number;
  checkpointId: number;
  /** Tensors of the file mapped to weights. */
  mapped: number;
  /** Tensors skipped as known non-weights. */
  ignored: Array<{ name: string; reason: string }>;
}

/** The shape keys a BUILTIN model keeps in its own columns, not in its config. */
const SHAPE_KEYS = ['length', 'channels', 'classes'] as const;

function configObject(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new BadUserInputError('config must be a JSON object', 'input.config');
  return value as Record<string, unknown>;
}

function withoutShape(config: Record<string, unknown>): Record<string, unknown> {
  const out = { ...config };
  for (const k of SHAPE_KEYS) delete out[k];
  return out;
}

/** A config as far as the weights and the inference math go: the seed and dropout do not matter. */
function comparable(config: Record<string, unknown>): string {
  const { seed: _seed, dropout: _dropout, ...rest } = config;
  return canonicalJson(rest);
}

/** The full config (defaults filled in) for an architecture and a shape; config problems name input.config. */
function resolveConfig(architecture: TorchArchitecture, config: Record<string, unknown>, shape: { length: number; channels: number; classes: number }): Record<string, unknown> {
  const known = Object.keys(TORCH_DEFAULTS[architecture]);
  for (const k of Object.keys(config)) {
    if (!known.includes(k)) throw new BadUserInputError(`config.${k} is not an option of ${architecture}; its options: ${known.join(', ')}`, 'input.config');
  }
  for (const k of SHAPE_KEYS) {
    if (config[k] !== undefined && config[k] !== shape[k]) {
      throw new BadUserInputError(`config.${k} is ${JSON.stringify(config[k])} but the ${k === 'classes' ? 'class count' : k} is ${shape[k]} (from the dataset or the run's model)`, 'input.config');
    }
  }
  try {
    return torchImportTable(architecture, { ...config, ...shape }).config;
  } catch (error) {
    if (error instanceof TorchImportError) throw new BadUserInputError(error.message, 'input.config');
    throw error;
  }
}

/**
 * Imports a PyTorch checkpoint saved as safetensors into a built-in architecture (mantis, cnn1d,
 * transformer): the state_dict is mapped onto the tfjs model (io/torch-import.ts) and stored as a
 * checkpoint in the tfjs format, of an existing run of a BUILTIN model of that architecture
 * (`runId`), or of a new run on a dataset (`datasetId`) whose BUILTIN model is made when no model
 * of that name exists (one of that name must be the same architecture, config and shape).
 * Everything is checked before the first write; a write that fails undoes the ones before it.
 */
export async function importSafetensors(ctx: Context, input: ImportSafetensorsInput): Promise<ImportSafetensorsPayloadRow> {
  if (!TORCH_ARCHITECTURES.includes(input.architecture as TorchArchitecture)) {
    throw new BadUserInputError(`Tangent imports PyTorch weights into ${TORCH_ARCHITECTURES.join(', ')}; got '${input.architecture}'`, 'input.architecture');
  }
  const architecture = input.architecture as TorchArchitecture;
  if (Boolean(input.runId) === Boolean(input.datasetId)) {
    throw new BadUserInputError('Give runId (an existing run) or datasetId (a new run), exactly one of them', 'input.runId');
  }
  const config = configObject(input.config);
  let file: SafetensorsFile;
  try {
    file = readSafetensors(input.safetensors);
  } catch (error) {
    if (error instanceof SafetensorsError) throw new BadUserInputError(`safetensors: ${error.message}`, 'input.safetensors');
    throw error;
  }
  const checkpointOf = (weightSpecs: Array<{ name: string; shape: number[]; dtype: 'float32' }>) =>
    parseInput(CheckpointInput, { step: input.step ?? 0, epoch: input.epoch ?? null, learningRate: input.learningRate ?? null, weightSpecs }, 'input');
  const mapWeights = (full: Record<string, unknown>) => {
    try {
      return importTorchWeights(architecture, full, file);
    } catch (error) {
      if (error instanceof TorchImportError) {
        throw new BadUserInputError(`The safetensors file does not fit ${architecture}: ${error.message}`, 'input.safetensors', { problems: error.problems });
      }
      throw error;
    }
  };
  const payload = (modelId: number, runId: number, checkpointId: number, w: ReturnType<typeof mapWeights>): ImportSafetensorsPayloadRow => ({
    modelId,
    runId,
    checkpointId,
    mapped: w.mapping.length,
    ignored: w.ignored.map((i) => ({ name: i.name, reason: i.why })),
  });

  if (input.runId) {
    const run = await ctx.loaders.runById.load(input.runId);
    if (!run) throw new NotFoundError('Run', input.runId);
    const model = (await ctx.loaders.modelById.load(run.modelId))!;
    if (model.format !== 'BUILTIN' || model.architecture !== architecture) {
      throw new BadUserInputError(`Run ${run.id}'s model ${model.name} is not a BUILTIN ${architecture} model`, 'input.runId');
    }
    // The model's columns hold its shape (as the compute service reads it), not its config.
    const known = new Set(Object.keys(TORCH_DEFAULTS[architecture]));
    const stored = Object.fromEntries(Object.entries(withoutShape((model.config ?? {}) as Record<string, unknown>)).filter(([k]) => known.has(k)));
    const shape = { length: model.inputLength, channels: model.channels, classes: model.numClasses };
    const full = resolveConfig(architecture, stored, shape);
    if (input.config !== undefined && input.config !== null) {
      const given = resolveConfig(architecture, { ...stored, ...config }, shape);
      if (comparable(given) !== comparable(full)) throw new BadUserInputError(`config differs from that of run ${run.id}'s model ${model.name}`, 'input.config');
    }
    const w = mapWeights(full);
    const checkpoint = await createCheckpoint(ctx, run.id, checkpointOf(w.weightSpecs), w.weightData);
    return payload(model.id, run.id, checkpoint.id, w);
  }

  const datasetId = input.datasetId as number;
  const dataset = await ctx.loaders.datasetById.load(datasetId);
  if (!dataset) throw new NotFoundError('Dataset', datasetId);
  const shape = { length: dataset.length, channels: dataset.channels, classes: dataset.classNames.length };
  const full = resolveConfig(architecture, config, shape);
  const w = mapWeights(full);
  const checkpointInput = checkpointOf(w.weightSpecs);
  const storedConfig = withoutShape(full);
  const digest = createHash('sha256').update(canonicalJson({ architecture, config: storedConfig, shape })).digest('hex').slice(0, 8);
  const modelInput = parseInput(
    ModelInput,
    {
      name: input.modelName?.trim() || `${architecture}-torch-${digest}`,
      format: 'BUILTIN',
      architecture,
      config: storedConfig,
      inputLength: shape.length,
      channels: shape.channels,
      numClasses: shape.classes,
    },
    'input',
  );
  // Reuse a model of this name when it is the same architecture, config and shape.
  const existing: Model | null = await modelByName(ctx, modelInput.name);
  if (existing) {
    const same =
      existing.format === 'BUILTIN' &&
      existing.architecture === architecture &&
      existing.inputLength === shape.length &&
      existing.channels === shape.channels &&
      existing.numClasses === shape.classes &&
      comparable(resolveConfig(architecture, Object.fromEntries(Object.entries(withoutShape((existing.config ?? {}) as Record<string, unknown>)).filter(([k]) => k in TORCH_DEFAULTS[architecture])), shape)) === comparable(full);
    if (!same) throw new ConflictError(`A different model named ${JSON.stringify(modelInput.name)} already exists`, { field: 'input.modelName' });
  }
  const model = existing ?? (await createModel(ctx, modelInput));
  ctx.loaders.modelById.prime(model.id, model);
  let run;
  try {
    run = await createRun(ctx, model.id, dataset.id, parseInput(RunInput, { name: input.runName?.trim() || model.name, status: 'COMPLETED' }, 'input'));
  } catch (error) {
    if (!existing) await discardModel(ctx, model.id);
    throw error;
  }
  try {
    const checkpoint = await createCheckpoint(ctx, run.id, checkpointInput, w.weightData);
    return payload(model.id, run.id, checkpoint.id, w);
  } catch (error) {
    await discardRun(ctx, run.id);
    if (!existing) await discardModel(ctx, model.id);
    throw error;
  }
}
