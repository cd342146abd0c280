import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Model } from '../db/generated/client.js';
import { isUniqueViolation } from '../db/prisma-errors.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { ModelInput } from '../schema/inputs.js';

export async function createModel(ctx: Context, input: z.output<typeof ModelInput>): Promise<Model> {
  try {
    return await ctx.db.prisma.model.create({
      data: {
        name: input.name,
        format: input.format,
        architecture: input.architecture ?? null,
        config: (input.config ?? {}) as object,
        ...(input.topology ? { topology: input.topology as object } : {}),
        inputLength: input.inputLength,
        channels: input.channels,
        numClasses: input.numClasses,
      },
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError(`A model named ${JSON.stringify(input.name)} already exists`, { field: 'input.name' });
    throw error;
  }
}

/** Deletes a model that no run uses; a model with runs is refused rather than cascading into them. */
export async function deleteModel(ctx: Context, id: number): Promise<void> {
  const runs = await ctx.db.prisma.run.count({ where: { modelId: id } });
  if (runs > 0) throw new ConflictError(`Model ${id} is used by ${runs} run(s); delete them first`, { field: 'id' });
  const { count } = await ctx.db.prisma.model.deleteMany({ where: { id } });
  if (count === 0) throw new NotFoundError('Model', id);
}
