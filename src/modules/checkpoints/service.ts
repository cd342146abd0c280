import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Checkpoint } from '../../platform/db/generated/client.js';
import type { Database } from '../../platform/db/database.js';
import { afterCommit, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { canonicalJson } from '../../io/tfjs-model.js';
import { BadUserInputError, ConflictError, invariant, NotFoundError } from '../../platform/errors.js';
import { DTYPE_BYTES, type CheckpointInput, type WeightSpec } from '../../platform/graphql/inputs.js';
import { afterNumber, pageSize, toConnection, type PageArgs } from '../../platform/graphql/pagination.js';
import type { CheckpointRow, ConnectionRow } from '../../platform/graphql/rows.js';
import {
  backfillLayerHashes,
  checkpointPage,
  deleteCheckpointById,
  findCheckpointAtStep,
  findCheckpointOrThrow,
  findLayerHashes,
  findWeights,
  insertCheckpoint,
} from './storage.js';
import { layerHashesOf } from './layer-hashes.js';
import { checkpointContextsByIds, type CheckpointContext } from './loaders-storage.js';
import { purgeUnusedLayers } from './weight-storage.js';

/** Bytes a list of specs describes, as tfjs lays them out: each tensor in order, no padding. */
export function weightSpecBytes(specs: readonly WeightSpec[]): number {
  let total = 0;
  for (const spec of specs) total += spec.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[spec.dtype];
  return total;
}

/** The specs, from the input's `weightSpecs` or from a model.json's `weightsManifest`. */
function specsOf(input: z.output<typeof CheckpointInput>): WeightSpec[] {
  if (input.weightSpecs && input.modelJson) {
    throw new BadUserInputError('Give either weightSpecs or modelJson, not both', 'input.weightSpecs');
  }
  const specs = input.weightSpecs ?? input.modelJson?.weightsManifest.flatMap((group) => group.weights);
  if (!specs) throw new BadUserInputError('A checkpoint needs its weight specs: weightSpecs or modelJson', 'input.weightSpecs');
  const names = new Set<string>();
  for (const [i, spec] of specs.entries()) {
    if (names.has(spec.name)) throw new BadUserInputError(`Weight ${spec.name} appears twice`, `input.weightSpecs[${i}].name`);
    names.add(spec.name);
  }
  return specs;
}

/**
 * Stores a checkpoint and its weights in one transaction, after checking that specs and bytes agree.
 * Idempotent under retry: a run's step is the key, so the same checkpoint sent again answers the
 * stored one, and a different one at that step is a CONFLICT.
 */
export async function createCheckpoint(
  ctx: Context,
  runId: number,
  input: z.output<typeof CheckpointInput>,
  weightData: Buffer,
): Promise<Checkpoint> {
  const specs = specsOf(input);
  const expected = weightSpecBytes(specs);
  if (expected !== weightData.byteLength) {
    throw new BadUserInputError(
      `The weight specs describe ${expected} bytes but weightData has ${weightData.byteLength}`,
      'input.weightData',
    );
  }
  const run = await ctx.loaders.runById.load(runId);
  if (!run) throw new NotFoundError('Run', runId);
  const sha256 = createHash('sha256').update(weightData).digest('hex');
  try {
    // Raw SQL rather than Prisma: the embedded adapter cannot bind bytea parameters from Prisma.
    const id = await ctx.db.transaction((tx) =>
      insertCheckpoint(tx, {
        runId,
        step: input.step,
        epoch: input.epoch ?? null,
        learningRate: input.learningRate ?? null,
        weightBytes: weightData.byteLength,
        weightSha256: sha256,
        specs,
        weightData,
        layerHashes: layerHashesOf(specs, weightData),
      }),
    );
    return await afterCommit(async () => {
      await ctx.pubsub.publish('runUpdated', { runId });
      return findCheckpointOrThrow(ctx.db, id);
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // (run, step) is the key: the same checkpoint sent again (a retry after OUTCOME_UNKNOWN) is answered with the stored one.
    const existing = await findCheckpointAtStep(ctx.db, runId, input.step);
    if (
      existing &&
      existing.weightSha256 === sha256 &&
      existing.weightBytes === weightData.byteLength &&
      existing.epoch === (input.epoch ?? null) &&
      existing.learningRate === (input.learningRate ?? null) &&
      canonicalJson(existing.weights?.specs ?? null) === canonicalJson(specs)
    ) {
      const { weights: _weights, ...checkpoint } = existing;
      return checkpoint;
    }
    throw new ConflictError(`Run ${runId} already has a different checkpoint at step ${input.step}`, { field: 'input.step' });
  }
}

export async function deleteCheckpoint(ctx: Context, id: number): Promise<void> {
  const checkpoint = await ctx.loaders.checkpointById.load(id);
  if (!checkpoint) throw new NotFoundError('Checkpoint', id);
  await deleteCheckpointById(ctx.db, id);
  ctx.loaders.checkpointById.clear(id);
  await purgeUnusedLayers(ctx.db);
  await ctx.pubsub.publish('runUpdated', { runId: checkpoint.runId });
}

/** The checkpoint a stored row refers to; a missing one is a broken invariant, not a client error. */
export async function loadCheckpoint(ctx: Pick<Context, 'loaders'>, id: number): Promise<Checkpoint> {
  const checkpoint = await ctx.loaders.checkpointById.load(id);
  invariant(checkpoint, `checkpoint ${id} is referenced but missing`);
  return checkpoint;
}

export type { CheckpointContext };

/**
 * A checkpoint a request names, with what queries at it need of its run, model and dataset, in one
 * statement remembered for the rest of the request (it also serves `checkpointById`): NOT_FOUND
 * when the checkpoint does not exist.
 */
export async function checkpointContext(ctx: Pick<Context, 'loaders'>, id: number): Promise<CheckpointContext> {
  const found = await ctx.loaders.checkpointContextById.load(id);
  if (!found) throw new NotFoundError('Checkpoint', id);
  return found;
}

/** Several checkpoints at once (one statement for those not read yet), in the order given; the first missing one is NOT_FOUND. */
export async function checkpointContexts(ctx: Pick<Context, 'loaders'>, ids: readonly number[]): Promise<CheckpointContext[]> {
  const found = await ctx.loaders.checkpointContextById.loadMany(ids);
  return found.map((row, i) => {
    if (row instanceof Error) throw row;
    if (!row) throw new NotFoundError('Checkpoint', ids[i]!);
    return row;
  });
}

/**
 * The same for a caller without a request (the compute service, also in a job worker): the same
 * statement, not cached. NOT_FOUND when the checkpoint does not exist.
 */
export async function loadCheckpointContext(db: Database, id: number): Promise<CheckpointContext> {
  const [found] = await checkpointContextsByIds(db, [id]);
  if (!found) throw new NotFoundError('Checkpoint', id);
  return found;
}

export { layerHashesOf, layerOfWeight } from './layer-hashes.js';
/** Checkpoint weights stored by layer: other modules read, store and purge them through these. */
export {
  assembleWeights,
  layerSizesOf,
  purgeUnusedLayers,
  readLayers,
  readWeightIndex,
  readWeights,
  storeWeights,
  type CheckpointWeightsRow,
  type WeightSpec as StoredWeightSpec,
} from './weight-storage.js';

/**
 * The SHA-256 of each layer's weights at a checkpoint, by layer name (layer-hashes.ts): kept when the
 * checkpoint was written, or computed now and kept for a checkpoint stored before they were
 * (the backfill, lazily on first use). NOT_FOUND when the checkpoint has no weights.
 */
export async function checkpointLayerHashes(db: Database, checkpointId: number): Promise<Record<string, string>> {
  const stored = await findLayerHashes(db, checkpointId);
  if (stored === undefined) throw new NotFoundError('Checkpoint', checkpointId);
  if (stored !== null) return stored;
  const weights = await findWeights(db, checkpointId);
  if (!weights) throw new NotFoundError('Checkpoint', checkpointId);
  const hashes = layerHashesOf(weights.specs as WeightSpec[], weights.data);
  await backfillLayerHashes(db, checkpointId, hashes);
  return hashes;
}

/** A run's checkpoints in step order. */
export async function listCheckpoints(ctx: Context, runId: number, args: PageArgs): Promise<ConnectionRow<CheckpointRow>> {
  const list = `checkpoints:${runId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const after = afterNumber(list, args.after);
  // The first page may have come with the run (runs/service.ts findRun): any prefix of it is a page.
  const first = after === null ? ctx.loaders.firstCheckpoints.get(runId) : undefined;
  const primed = first && (first.take >= limit + 1 || first.rows.length < first.take) ? first.rows.slice(0, limit + 1) : null;
  const rows = limit === 0 ? [] : (primed ?? (await checkpointPage(ctx.db, runId, after, limit + 1)));
  return toConnection(list, rows, limit, (row) => [row.step], () => ctx.loaders.checkpointCountByRun.load(runId));
}
