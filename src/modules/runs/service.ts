import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Prisma, Run } from '../../platform/db/generated/client.js';
import { autocommitWrite, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { BadUserInputError, ConflictError, invariant, NotFoundError } from '../../platform/errors.js';
import type { RunConfigInput, RunInput, UpdateRunInput } from '../../platform/graphql/inputs.js';
import { checkModelConfig } from '../models/service.js';
import { pageById, type PageArgs } from '../../platform/graphql/pagination.js';
import type { ConnectionRow, RunRow } from '../../platform/graphql/rows.js';
import { purgeUnusedLayers } from '../checkpoints/service.js';
import { countRuns, deleteRunById, findRunByIdempotencyKey, insertRun, runPage, updateRunById, type RunFilter } from './storage.js';
import { runWithFirstCheckpoints } from './loaders-storage.js';

export type { RunFilter } from './storage.js';

/** The stored config: the named fields that were given, plus `extra` as the client sent it. */
function configJson(config: z.output<typeof RunConfigInput>): Prisma.InputJsonObject {
  if (!config) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (value !== null && value !== undefined) out[key] = value;
  return out as Prisma.InputJsonObject;
}

/**
 * Creates a run after checking that the model's input and classes fit the dataset, and that a
 * BUILTIN model can be built. Idempotent with `idempotencyKey`: the same create sent again answers
 * the run it made (runs have no natural key; names repeat).
 */
export async function createRun(
  ctx: Context,
  modelId: number,
  datasetId: number,
  input: z.output<typeof RunInput>,
): Promise<Run> {
  const [model, dataset] = await Promise.all([ctx.loaders.modelById.load(modelId), ctx.loaders.datasetById.load(datasetId)]);
  if (!model) throw new NotFoundError('Model', modelId);
  if (!dataset) throw new NotFoundError('Dataset', datasetId);
  if (model.inputLength !== dataset.length || model.channels !== dataset.channels) {
    throw new BadUserInputError(
      `Model ${model.name} takes ${model.inputLength} × ${model.channels} inputs; dataset ${dataset.name} has ${dataset.length} × ${dataset.channels}`,
      'input.modelId',
    );
  }
  if (model.numClasses !== dataset.classNames.length) {
    throw new BadUserInputError(
      `Model ${model.name} has ${model.numClasses} classes; dataset ${dataset.name} has ${dataset.classNames.length}`,
      'input.modelId',
    );
  }
  checkModelConfig(model, { modelId: model.id, field: 'input.modelId' });
  const key = input.idempotencyKey ?? null;
  const made = key ? await runForKey(ctx, key, { name: input.name, modelId, datasetId }) : null;
  if (made) return made;
  let run: Run;
  try {
    run = await autocommitWrite(() =>
      insertRun(ctx.db, { name: input.name, modelId, datasetId, config: configJson(input.config), status: input.status ?? 'PENDING', idempotencyKey: key }),
    );
  } catch (error) {
    // Two sends of one key at once: the second finds the first's run.
    const again = key && isUniqueViolation(error) ? await runForKey(ctx, key, { name: input.name, modelId, datasetId }) : null;
    if (again) return again;
    throw error;
  }
  ctx.loaders.runById.prime(run.id, run);
  return run;
}

/**
 * The run a create with this idempotency key already made, when it is the same run (name, model,
 * dataset); null when the key is new; CONFLICT when the key made another run.
 */
export async function runForKey(ctx: Context, key: string, run: { name: string; modelId: number; datasetId: number }): Promise<Run | null> {
  const existing = await findRunByIdempotencyKey(ctx.db, key);
  if (!existing) return null;
  if (existing.name === run.name && existing.modelId === run.modelId && existing.datasetId === run.datasetId) return existing;
  throw new ConflictError(`idempotencyKey ${JSON.stringify(key)} already made run ${existing.id}, with another name, model or dataset`, { field: 'input.idempotencyKey', runId: String(existing.id) });
}

export async function updateRun(ctx: Context, id: number, input: z.output<typeof UpdateRunInput>): Promise<Run> {
  const existing = await ctx.loaders.runById.load(id);
  if (!existing) throw new NotFoundError('Run', id);
  const run = await updateRunById(ctx.db, id, {
    ...(input.name ? { name: input.name } : {}),
    ...(input.status ? { status: input.status } : {}),
    ...(input.config ? { config: { ...(existing.config as object), ...configJson(input.config) } } : {}),
  });
  ctx.loaders.runById.clear(id).prime(id, run);
  await ctx.pubsub.publish('runUpdated', { runId: id });
  return run;
}

export async function deleteRun(ctx: Context, id: number): Promise<void> {
  const count = await deleteRunById(ctx.db, id);
  if (count === 0) throw new NotFoundError('Run', id);
  ctx.loaders.runById.clear(id);
  // Its checkpoints went with it: the weight layers only they held go too.
  await purgeUnusedLayers(ctx.db);
  await ctx.pubsub.publish('runUpdated', { runId: id });
}

/**
 * Deletes a run without what deleteRun does around it (no event, no loader change): how an import
 * undoes the run it made when a later write fails (no client has seen it).
 */
export async function discardRun(ctx: Pick<Context, 'db'>, id: number): Promise<void> {
  await deleteRunById(ctx.db, id);
  await purgeUnusedLayers(ctx.db);
}

/** The run a stored row refers to; a missing one is a broken invariant, not a client error. */
export async function loadRun(ctx: Context, id: number) {
  const run = await ctx.loaders.runById.load(id);
  invariant(run, `run ${id} is referenced but missing`);
  return run;
}

/**
 * A run by id (null when there is none), read with the first `firstCheckpoints` of its checkpoints
 * when the client also asked for them (see Query.run): one statement for both, the page kept for
 * listCheckpoints and the count for checkpointCount. A run already read in this request is not read again.
 */
export async function findRun(ctx: Context, id: number, firstCheckpoints: number | null): Promise<Run | null> {
  if (firstCheckpoints === null || ctx.loaders.firstCheckpoints.has(id)) return ctx.loaders.runById.load(id);
  const read = await runWithFirstCheckpoints(ctx.db, id, firstCheckpoints);
  if (!read) {
    ctx.loaders.runById.prime(id, null);
    return null;
  }
  ctx.loaders.runById.prime(id, read.run);
  ctx.loaders.checkpointCountByRun.prime(id, read.checkpointCount);
  ctx.loaders.firstCheckpoints.set(id, read.first);
  return read.run;
}

/** A runs connection by id: all runs, or those `where` names. */
export function listRuns(ctx: Context, args: PageArgs & { where: RunFilter }): Promise<ConnectionRow<RunRow>> {
  return pageById(
    ctx.config.maxPageSize,
    'runs',
    args,
    (after, take) => runPage(ctx.db, args.where, after, take),
    () => countRuns(ctx.db, args.where),
  );
}
