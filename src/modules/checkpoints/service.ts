import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Checkpoint } from '../../platform/db/generated/client.js';
import { afterCommit, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { canonicalJson } from '../../io/tfjs-model.js';
import { BadUserInputError, ConflictError, NotFoundError } from '../../platform/errors.js';
import { DTYPE_BYTES, type CheckpointInput, type WeightSpec } from '../../platform/graphql/inputs.js';

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
    const id = await ctx.db.transaction(async (tx) => {
      // named: checkpoint.insert
      const [row] = await tx.query<{ id: number }>(
        `INSERT INTO checkpoint (run_id, step, epoch, learning_rate, weight_bytes, weight_sha256)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
        [runId, input.step, input.epoch ?? null, input.learningRate ?? null, weightData.byteLength, sha256],
      );
      const checkpointId = Number(row!.id);
      // named: checkpointWeights.insert
      await tx.query('INSERT INTO checkpoint_weights (checkpoint_id, specs, data) VALUES ($1, $2::jsonb, $3)', [
        checkpointId,
        JSON.stringify(specs),
        weightData,
      ]);
      return checkpointId;
    });
    return await afterCommit(async () => {
      await ctx.pubsub.publish('runUpdated', { runId });
      return ctx.db.prisma.checkpoint.findUniqueOrThrow({ where: { id } });
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    // (run, step) is the key: the same checkpoint sent again (a retry after OUTCOME_UNKNOWN) is answered with the stored one.
    const existing = await ctx.db.prisma.checkpoint.findUnique({ where: { runId_step: { runId, step: input.step } }, include: { weights: { select: { specs: true } } } });
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
  await ctx.db.prisma.checkpoint.deleteMany({ where: { id } });
  ctx.loaders.checkpointById.clear(id);
  await ctx.pubsub.publish('runUpdated', { runId: checkpoint.runId });
}
