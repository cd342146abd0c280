import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Dataset } from '../../platform/db/generated/client.js';
import { afterCommit, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { insertSamples, validateSamples, type NewSample } from './storage.js';
import { BadUserInputError, ConflictError, NotFoundError } from '../../platform/errors.js';
import { MAX_SAMPLES_PER_REQUEST, type DatasetInput } from '../../platform/graphql/inputs.js';

function checkBatchSize(samples: readonly unknown[], field: string): void {
  if (samples.length > MAX_SAMPLES_PER_REQUEST) {
    throw new BadUserInputError(`At most ${MAX_SAMPLES_PER_REQUEST} samples per request; send the rest in further requests`, field);
  }
}

/**
 * Creates a dataset and its first samples in one transaction. Idempotent under retry: the name is
 * the key, so the same dataset with the same samples sent again answers the stored one; a
 * different dataset of that name is a CONFLICT.
 */
export async function createDataset(ctx: Context, input: z.output<typeof DatasetInput>, samples: readonly NewSample[]): Promise<Dataset> {
  checkBatchSize(samples, 'input.samples');
  try {
    return await ctx.db.transaction(async (tx) => {
      // named: dataset.insert
      const [row] = await tx.query<{ id: number }>(
        `INSERT INTO dataset (name, description, length, channels, class_names, length_resample)
         VALUES ($1, $2, $3, $4, $5::text[], $6::resample_method) RETURNING id`,
        [input.name, input.description ?? null, input.length, input.channels, input.classNames, input.lengthResample ?? null],
      );
      const id = Number(row!.id);
      const shape = { id, length: input.length, channels: input.channels, classNames: input.classNames };
      await validateSamples(tx, shape, samples, 'input.samples');
      await insertSamples(tx, id, samples);
      return id;
    }).then((id) => afterCommit(() => ctx.db.prisma.dataset.findUniqueOrThrow({ where: { id } })));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const existing = await ctx.db.prisma.dataset.findUnique({ where: { name: input.name } });
    if (existing && (await sameDataset(ctx, existing, input, samples))) return existing;
    throw new ConflictError(`A different dataset named ${JSON.stringify(input.name)} already exists`, { field: 'input.name' });
  }
}

/**
 * Whether a stored dataset is exactly the one a create describes: its definition, and exactly the
 * given samples (no more, no fewer, each bit-equal). What makes createDataset (and importUcr, which
 * creates through it) idempotent under retry.
 */
async function sameDataset(ctx: Context, stored: Dataset, input: z.output<typeof DatasetInput>, samples: readonly NewSample[]): Promise<boolean> {
  if (
    stored.description !== (input.description ?? null) ||
    stored.length !== input.length ||
    stored.channels !== input.channels ||
    stored.lengthResample !== (input.lengthResample ?? null) ||
    stored.classNames.length !== input.classNames.length ||
    stored.classNames.some((c, i) => c !== input.classNames[i])
  ) {
    return false;
  }
  // named: sample.allOfDataset
  const rows = await ctx.db.sql.query<{ index: number; label: number; split: string; series: Uint8Array; original_length: number | null }>(
    'SELECT index, label, split, series, original_length FROM sample WHERE dataset_id = $1',
    [stored.id],
  );
  if (rows.length !== samples.length) return false;
  const byIndex = new Map(rows.map((r) => [Number(r.index), r]));
  return samples.every((s) => {
    const row = byIndex.get(s.index);
    return (
      row !== undefined &&
      Number(row.label) === s.label &&
      row.split === s.split &&
      (row.original_length ?? null) === (s.originalLength ?? null) &&
      Buffer.from(row.series).equals(Buffer.from(s.series.buffer, s.series.byteOffset, s.series.byteLength))
    );
  });
}

/** Appends samples to an existing dataset, all or none. */
export async function addSamples(ctx: Context, datasetId: number, samples: readonly NewSample[]): Promise<number> {
  checkBatchSize(samples, 'samples');
  const dataset = await ctx.loaders.datasetById.load(datasetId);
  if (!dataset) throw new NotFoundError('Dataset', datasetId);
  return ctx.db.transaction(async (tx) => {
    // Serialise concurrent appends to one dataset so the index check below stays true at commit.
    await tx.query('SELECT id FROM dataset WHERE id = $1 FOR UPDATE', [datasetId]);
    await validateSamples(tx, dataset, samples);
    return insertSamples(tx, datasetId, samples);
  });
}

export async function deleteDataset(ctx: Context, id: number): Promise<void> {
  const { count } = await ctx.db.prisma.dataset.deleteMany({ where: { id } });
  if (count === 0) throw new NotFoundError('Dataset', id);
  ctx.loaders.datasetById.clear(id);
}
