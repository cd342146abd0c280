import type { z } from 'zod';
import { architectureConfigProblems } from '../../compute/index.js';
import type { Context } from '../context.js';
import type { Model } from '../../platform/db/generated/client.js';
import { autocommitWrite, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { canonicalJson } from '../../io/tfjs-model.js';
import { BadUserInputError, ConflictError, invariant, NotFoundError } from '../../platform/errors.js';
import type { ModelInput } from '../../platform/graphql/inputs.js';
import { pageById, type PageArgs } from '../../platform/graphql/pagination.js';
import type { ConnectionRow, ModelRow } from '../../platform/graphql/rows.js';
import { countModels, countRunsOfModel, deleteModelById, findModelByName, insertModel, modelPage, type ModelFilter } from './storage.js';

/** What a model's config is checked from: its format, architecture and config, and its shape. */
export type ModelConfigFields = Pick<Model, 'format' | 'architecture' | 'config' | 'inputLength' | 'channels' | 'numClasses'>;

/**
 * Refuses a BUILTIN model whose architecture and config cannot be built for its shape (the data
 * set's length, channels and classes), with every problem named: the one check that createModel,
 * createRun, trainRun and importSafetensors make before they write anything, so that a config the
 * engine would throw on (a transformer patch that does not divide the length…) never becomes a
 * model, a run or a FAILED training. TFJS_LAYERS models carry their own topology and pass.
 *
 * `at` says where the model comes from: `{ input: 'input' }` for a model being created (the error's
 * field is then `input.config.<key>` or `input.architecture`), or `{ modelId, field }` for a stored
 * model a request names (the field is that request's, e.g. `input.modelId`).
 */
export function checkModelConfig(model: ModelConfigFields, at: { input: string } | { modelId: number; field: string }): void {
  if (model.format !== 'BUILTIN') return;
  const config = (model.config ?? {}) as Record<string, unknown>;
  const problems = architectureConfigProblems(model.architecture ?? '', config, { length: model.inputLength, channels: model.channels, classes: model.numClasses });
  if (problems.length === 0) return;
  const first = problems[0]!;
  const extensions = { architecture: model.architecture, configKey: first.key, problems: problems.map((p) => p.message) };
  const all = problems.map((p) => p.message).join('; ');
  if ('input' in at) {
    const field = first.key === 'architecture' ? `${at.input}.architecture` : `${at.input}.config.${first.key}`;
    throw new BadUserInputError(all, field, extensions);
  }
  throw new BadUserInputError(`Model ${at.modelId} cannot be built: ${all}`, at.field, { ...extensions, modelId: String(at.modelId) });
}

/**
 * Stores a model after checking that a BUILTIN one can be built for its shape (checkModelConfig).
 * Idempotent under retry: the name is the key, so creating a model that already exists exactly as
 * given answers the stored one (a retry after OUTCOME_UNKNOWN); a different model of that name is
 * a CONFLICT.
 */
export async function createModel(ctx: Context, input: z.output<typeof ModelInput>): Promise<Model> {
  checkModelConfig(
    { format: input.format, architecture: input.architecture ?? null, config: (input.config ?? {}) as object, inputLength: input.inputLength, channels: input.channels, numClasses: input.numClasses },
    { input: 'input' },
  );
  const data = {
    name: input.name,
    format: input.format,
    architecture: input.architecture ?? null,
    config: (input.config ?? {}) as object,
    ...(input.topology ? { topology: input.topology as object } : {}),
    inputLength: input.inputLength,
    channels: input.channels,
    numClasses: input.numClasses,
  };
  try {
    return await autocommitWrite(() => insertModel(ctx.db, data));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const existing = await findModelByName(ctx.db, input.name);
    if (existing && sameModel(existing, data)) return existing;
    throw new ConflictError(`A different model named ${JSON.stringify(input.name)} already exists`, { field: 'input.name' });
  }
}

/** Whether a stored model is the one a create describes (JSON compared key-order-free). */
function sameModel(stored: Model, data: { format: string; architecture: string | null; config: object; topology?: object; inputLength: number; channels: number; numClasses: number }): boolean {
  return (
    stored.format === data.format &&
    stored.architecture === data.architecture &&
    canonicalJson(stored.config) === canonicalJson(data.config) &&
    canonicalJson(stored.topology ?? null) === canonicalJson(data.topology ?? null) &&
    stored.inputLength === data.inputLength &&
    stored.channels === data.channels &&
    stored.numClasses === data.numClasses
  );
}

/** Deletes a model that no run uses; a model with runs is refused rather than cascading into them. */
export async function deleteModel(ctx: Context, id: number): Promise<void> {
  const runs = await countRunsOfModel(ctx.db, id);
  if (runs > 0) throw new ConflictError(`Model ${id} is used by ${runs} run(s); delete them first`, { field: 'id' });
  const count = await deleteModelById(ctx.db, id);
  if (count === 0) throw new NotFoundError('Model', id);
}

/** The stored model of this name, or null. */
export function modelByName(ctx: Pick<Context, 'db'>, name: string): Promise<Model | null> {
  return findModelByName(ctx.db, name);
}

/**
 * Deletes a model without the checks of deleteModel: how an import undoes the model it made when a
 * later write fails (nothing uses it yet).
 */
export async function discardModel(ctx: Pick<Context, 'db'>, id: number): Promise<void> {
  await deleteModelById(ctx.db, id);
}

/** The model a stored row refers to; a missing one is a broken invariant, not a client error. */
export async function loadModel(ctx: Context, id: number) {
  const model = await ctx.loaders.modelById.load(id);
  invariant(model, `model ${id} is referenced but missing`);
  return model;
}

/** The models connection: by id, filtered by format and name. */
export function listModels(ctx: Context, args: PageArgs & ModelFilter): Promise<ConnectionRow<ModelRow>> {
  const filter: ModelFilter = { format: args.format, nameContains: args.nameContains };
  return pageById(
    ctx.config.maxPageSize,
    'models',
    args,
    (after, take) => modelPage(ctx.db, filter, after, take),
    () => countModels(ctx.db, filter),
  );
}
