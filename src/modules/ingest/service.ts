import type { Context } from '../context.js';
import { checkpointShape, clientProducer, columnField, writeMetricColumns, type MetricColumns } from '../terms/metrics.js';
import { BadUserInputError, ConflictError, NotFoundError } from '../../platform/errors.js';
import type { LengthPolicy, Resample } from '../../io/length-policy.js';
import { parseUcr, UcrFormatError, type UcrDataset } from '../../io/ucr.js';
import { planUcrImport, UcrImportError } from '../../io/ucr-import.js';
import {
  canonicalJson,
  modelShapeOf,
  parseModelJson,
  TfjsModelError,
  topologyHash,
  type TfjsModelJson,
} from '../../io/tfjs-model.js';
import { DatasetInput, ModelInput, parseInput, RunInput, CheckpointInput } from '../../platform/graphql/inputs.js';
import { createCheckpoint } from '../checkpoints/service.js';
import { addSampleColumns, createDataset, type SampleColumns } from '../datasets/service.js';
import { createModel, discardModel, modelByName } from '../models/service.js';
import { createRun, discardRun } from '../runs/service.js';

/** What the bulk and import payloads resolve from (codegen mappers point here). */
export interface AddSamplesBulkPayloadRow {
  datasetId: number;
  added: number;
  unchanged: number;
}

export interface ImportUcrPayloadRow {
  datasetId: number;
  added: number;
}

export interface ImportTfjsModelPayloadRow {
  modelId: number;
  runId: number | null;
  checkpointId: number | null;
}

function checkRows(ctx: Context, rows: number, field: string): void {
  if (rows > ctx.config.maxBulkRows) {
    throw new BadUserInputError(
      `${rows} rows in one request; at most ${ctx.config.maxBulkRows} (ingestLimits.maxRows): send the rest in further requests`,
      field,
      { row: ctx.config.maxBulkRows },
    );
  }
}

/** Records client metrics given as columns at a checkpoint: the whole batch or nothing. */
export async function logMetrics(ctx: Context, checkpointId: number, batch: MetricColumns): Promise<number> {
  checkRows(ctx, (batch.sampleIds ?? batch.sampleIndices)?.length ?? 0, batch.sampleIds ? 'input.sampleIds' : 'input.sampleIndices');
  const shape = await checkpointShape(ctx, checkpointId);
  return writeMetricColumns(ctx.db, shape, batch, clientProducer(ctx), columnField('input'));
}

/** Adds samples given as columns: all or none; identical samples already stored are left alone. */
export async function addSamplesBulk(ctx: Context, datasetId: number, batch: SampleColumns): Promise<AddSamplesBulkPayloadRow> {
  checkRows(ctx, batch.indices.length, 'input.indices');
  const dataset = await ctx.loaders.datasetById.load(datasetId);
  if (!dataset) throw new NotFoundError('Dataset', datasetId);
  const result = await addSampleColumns(ctx, dataset, batch, columnField('input'));
  return { datasetId, ...result };
}

export interface UcrFileInput {
  text: string;
  fileName?: string | null;
  split?: string | null;
}

/** The longest series a dataset takes (the bound of CreateDatasetInput.length). */
const MAX_LENGTH = 1_000_000;
/**
 * The most values one importUcr may hold after its length policy (256 MB of float32): a policy
 * can make a small request large, which the body limit alone would not catch.
 */
const MAX_IMPORT_VALUES = 64 * 1024 * 1024;

/** ImportUcrInput.lengthPolicy as the planner takes it; refuses a length out of range. */
function lengthPolicyOf(input: { length: number; resample: 'LINEAR' | 'PAD' | 'TRUNCATE' } | null | undefined): LengthPolicy | null {
  if (!input) return null;
  if (!Number.isInteger(input.length) || input.length < 1 || input.length > MAX_LENGTH) {
    throw new BadUserInputError(`lengthPolicy.length is ${input.length}; it must be 1 to ${MAX_LENGTH} steps`, 'input.lengthPolicy.length');
  }
  return { length: input.length, resample: input.resample.toLowerCase() as Resample };
}

/**
 * Creates a dataset from UCR/UEA file texts in one transaction (through the same path as
 * createDataset), bringing every series to one length first when a length policy is given. Every
 * file is read and every series resampled before the first write, so a refusal writes nothing.
 */
export async function importUcr(
  ctx: Context,
  input: {
    name?: string | null;
    description?: string | null;
    files: readonly UcrFileInput[];
    lengthPolicy?: { length: number; resample: 'LINEAR' | 'PAD' | 'TRUNCATE' } | null;
  },
): Promise<ImportUcrPayloadRow> {
  const lengthPolicy = lengthPolicyOf(input.lengthPolicy);
  const parsed: UcrDataset[] = [];
  for (const [i, file] of input.files.entries()) {
    try {
      parsed.push(await parseUcr(file.text.split(/\r?\n/)));
    } catch (error) {
      if (error instanceof UcrFormatError) throw new BadUserInputError(`files[${i}]: ${error.message}`, `input.files[${i}].text`, { line: error.line });
      throw error;
    }
  }
  if (lengthPolicy && parsed.length > 0) {
    const values = parsed.reduce((sum, d) => sum + d.series.length, 0) * lengthPolicy.length * parsed[0]!.channels;
    if (values > MAX_IMPORT_VALUES) {
      throw new BadUserInputError(
        `lengthPolicy would make ${values} values, more than ${MAX_IMPORT_VALUES} in one request; import the files with \`tangent import ucr\`, which sends them in batches`,
        'input.lengthPolicy.length',
      );
    }
  }
  let plan;
  try {
    plan = planUcrImport(
      parsed.map((dataset, i) => ({ dataset, fileName: input.files[i]!.fileName, split: input.files[i]!.split })),
      lengthPolicy,
    );
  } catch (error) {
    if (error instanceof UcrImportError) {
      // Field and line locate the text at fault, as for format errors; the message says the way out.
      const hint = error.needsLengthPolicy ? '; give lengthPolicy: { length: N, resample: LINEAR | PAD | TRUNCATE } to bring every series to N steps' : '';
      throw new BadUserInputError(
        `files[${error.file}]: ${error.message}${hint}`,
        error.line === null ? `input.files[${error.file}]` : `input.files[${error.file}].text`,
        error.line === null ? {} : { line: error.line },
      );
    }
    throw error;
  }
  checkRows(ctx, plan.indices.length, 'input.files');
  const name = input.name?.trim() || plan.problemName;
  if (!name) throw new BadUserInputError('The files name no @problemName; give the dataset a name', 'input.name');
  const datasetInput = parseInput(
    DatasetInput,
    {
      name,
      description: input.description ?? null,
      length: plan.length,
      channels: plan.channels,
      classNames: plan.classNames,
      lengthResample: input.lengthPolicy?.resample ?? null,
    },
    'input',
  );
  const values = plan.length * plan.channels;
  const samples = Array.from(plan.indices, (index, i) => ({
    index,
    label: plan.labels[i]!,
    split: plan.splits[i]!,
    series: plan.series.subarray(i * values, (i + 1) * values),
    originalLength: plan.originalLengths?.[i] ?? null,
  }));
  const dataset = await createDataset(ctx, datasetInput, samples);
  return { datasetId: dataset.id, added: samples.length };
}

export interface ImportTfjsModelInput {
  modelJson: unknown;
  weightData?: Buffer | null;
  modelName?: string | null;
  inputLength?: number | null;
  channels?: number | null;
  numClasses?: number | null;
  runId?: number | null;
  datasetId?: number | null;
  runName?: string | null;
  step?: number | null;
  epoch?: number | null;
  learningRate?: number | null;
}

function tfjsError(error: unknown): never {
  if (error instanceof TfjsModelError) {
    throw new BadUserInputError(`model.json: ${error.message}`, `input.modelJson${error.path ? `.${error.path}` : ''}`);
  }
  throw error;
}

/**
 * Imports a TensorFlow.js layers model: the topology as a TFJS_LAYERS model (an existing one with
 * the same name and topology is reused, so importing again is harmless) and, with weights, a
 * checkpoint of an existing run or of a new run on a dataset. Everything is checked before the
 * first write; a write that fails after another undoes the ones before it.
 */
export async function importTfjsModel(ctx: Context, input: ImportTfjsModelInput): Promise<ImportTfjsModelPayloadRow> {
  let modelJson: TfjsModelJson;
  try {
    modelJson = parseModelJson(input.modelJson);
  } catch (error) {
    tfjsError(error);
  }
  if (input.runId && input.datasetId) throw new BadUserInputError('Give runId (an existing run) or datasetId (a new run), not both', 'input.runId');
  const hasWeights = input.weightData !== undefined && input.weightData !== null;
  if (hasWeights && !input.runId && !input.datasetId) {
    throw new BadUserInputError('Weights become a checkpoint, which belongs to a run: give runId or datasetId', 'input.weightData');
  }
  if (hasWeights && !modelJson.weightsManifest?.length) {
    throw new BadUserInputError('model.json has no weightsManifest to describe weightData', 'input.modelJson.weightsManifest');
  }
  const checkpointInput = hasWeights
    ? parseInput(CheckpointInput, { step: input.step ?? 0, epoch: input.epoch ?? null, learningRate: input.learningRate ?? null, modelJson }, 'input')
    : null;

  const shape = modelShapeOf(modelJson);
  const hash = topologyHash(modelJson);

  if (input.runId) {
    const run = await ctx.loaders.runById.load(input.runId);
    if (!run) throw new NotFoundError('Run', input.runId);
    const model = (await ctx.loaders.modelById.load(run.modelId))!;
    if (model.format === 'TFJS_LAYERS' && model.topology) {
      const stored = model.topology as TfjsModelJson['modelTopology'];
      if (canonicalJson({ class_name: stored.class_name, config: stored.config }) !== canonicalJson({ class_name: modelJson.modelTopology.class_name, config: modelJson.modelTopology.config })) {
        throw new BadUserInputError(`model.json's topology differs from that of run ${run.id}'s model ${model.name}`, 'input.modelJson.modelTopology');
      }
    }
    const checkpoint = checkpointInput ? await createCheckpoint(ctx, run.id, checkpointInput, input.weightData!) : null;
    return { modelId: model.id, runId: run.id, checkpointId: checkpoint?.id ?? null };
  }

  const inputLength = input.inputLength ?? shape.inputLength;
  const channels = input.channels ?? shape.channels;
  const numClasses = input.numClasses ?? shape.numClasses;
  if (inputLength === null || channels === null) {
    throw new BadUserInputError(
      "The topology's input is not [batch, length, channels]; give inputLength and channels",
      'input.inputLength',
    );
  }
  if (numClasses === null) throw new BadUserInputError('No layer of the topology states the class count (units); give numClasses', 'input.numClasses');
  const modelInput = parseInput(
    ModelInput,
    {
      name: input.modelName?.trim() || `${shape.name ?? 'tfjs-model'}-${hash.slice(0, 8)}`,
      format: 'TFJS_LAYERS',
      topology: modelJson.modelTopology,
      config: { importedFrom: 'tfjs', topologySha256: hash },
      inputLength,
      channels,
      numClasses,
    },
    'input',
  );
  let dataset = null;
  if (input.datasetId) {
    dataset = await ctx.loaders.datasetById.load(input.datasetId);
    if (!dataset) throw new NotFoundError('Dataset', input.datasetId);
  }
  // Reuse a model of this name when it is the same architecture; another one is a conflict.
  const existing = await modelByName(ctx, modelInput.name);
  if (existing && (existing.format !== 'TFJS_LAYERS' || (existing.config as { topologySha256?: string })?.topologySha256 !== hash)) {
    throw new ConflictError(`A different model named ${JSON.stringify(modelInput.name)} already exists`, { field: 'input.modelName' });
  }
  const model = existing ?? (await createModel(ctx, modelInput));
  ctx.loaders.modelById.prime(model.id, model);
  if (!dataset) return { modelId: model.id, runId: null, checkpointId: null };

  let run;
  try {
    run = await createRun(ctx, model.id, dataset.id, parseInput(RunInput, { name: input.runName?.trim() || model.name, status: 'COMPLETED' }, 'input'));
  } catch (error) {
    if (!existing) await discardModel(ctx, model.id);
    throw error;
  }
  try {
    const checkpoint = checkpointInput ? await createCheckpoint(ctx, run.id, checkpointInput, input.weightData!) : null;
    return { modelId: model.id, runId: run.id, checkpointId: checkpoint?.id ?? null };
  } catch (error) {
    await discardRun(ctx, run.id);
    if (!existing) await discardModel(ctx, model.id);
    throw error;
  }
}
