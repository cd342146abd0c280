import type { z } from 'zod';
import type { Context } from '../context.js';
import type { Dataset } from '../../platform/db/generated/client.js';
import type { Tx } from '../../platform/db/sql.js';
import { afterCommit, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import {
  countDatasets,
  countSamples,
  datasetPage,
  deleteDatasetById,
  findDatasetByName,
  findDatasetOrThrow,
  firstStoredIndex,
  insertDataset,
  insertSamples,
  lockDataset,
  samplePage,
  samplesOfDataset,
  upsertSampleColumns,
  type SampleWhere,
} from './storage.js';
import { checkSamples, validateSampleColumns, type DatasetShape, type NewSample, type SampleColumns, type SampleFieldNamer } from './samples.js';
import { purgeUnusedLayers } from '../checkpoints/service.js';
import { BadUserInputError, ConflictError, invariant, NotFoundError } from '../../platform/errors.js';
import { MAX_SAMPLES_PER_REQUEST, type DatasetInput } from '../../platform/graphql/inputs.js';
import { afterNumber, pageById, pageSize, toConnection, type PageArgs } from '../../platform/graphql/pagination.js';
import type { ConnectionRow, DatasetRow, SampleRow } from '../../platform/graphql/rows.js';

export type { NewSample, SampleColumns, SampleFieldNamer, DatasetShape } from './samples.js';
export type { SampleWhere } from './storage.js';

function checkBatchSize(samples: readonly unknown[], field: string): void {
  if (samples.length > MAX_SAMPLES_PER_REQUEST) {
    throw new BadUserInputError(`At most ${MAX_SAMPLES_PER_REQUEST} samples per request; send the rest in further requests`, field);
  }
}

/** The dataset a stored row refers to; a missing one is a broken invariant, not a client error. */
export async function loadDataset(ctx: Context, id: number) {
  const dataset = await ctx.loaders.datasetById.load(id);
  invariant(dataset, `dataset ${id} is referenced but missing`);
  return dataset;
}

/**
 * Checks a batch against its dataset and names the first bad sample: series of the wrong length,
 * a label outside the class list, an index repeated in the batch or already stored.
 */
export async function validateSamples(tx: Tx, dataset: DatasetShape, samples: readonly NewSample[], field = 'samples'): Promise<void> {
  checkSamples(dataset, samples, field);
  if (samples.length === 0) return;
  const index = await firstStoredIndex(tx, dataset.id, samples.map((s) => s.index));
  if (index !== null) {
    const i = samples.findIndex((s) => s.index === index);
    throw new BadUserInputError(`${field}[${i}].index ${index} already exists in the dataset`, `${field}[${i}].index`);
  }
}

/**
 * Writes a columnar batch of samples inside the caller's transaction (COPY into a temporary table,
 * then one INSERT … ON CONFLICT DO NOTHING). A sample already stored identically (same position,
 * label, split, series bytes and original length) is left as it is, so sending a batch twice is
 * harmless; one that differs is refused (CONFLICT) naming the row, since metrics may already
 * describe the stored one.
 */
export async function upsertSamples(
  tx: Tx,
  dataset: DatasetShape,
  batch: SampleColumns,
  field: SampleFieldNamer,
): Promise<{ added: number; unchanged: number }> {
  const n = validateSampleColumns(dataset, batch, field);
  if (n === 0) return { added: 0, unchanged: 0 };
  const { added, differs } = await upsertSampleColumns(tx, dataset, batch, n);
  if (differs) {
    const row = differs.row;
    throw new ConflictError(
      `Row ${row}: the dataset already has a different sample at index ${differs.index}; samples are never replaced (metrics may describe the stored one)`,
      { field: field(row, 'indices'), row },
    );
  }
  return { added, unchanged: n - added };
}

/** Adds a columnar batch to a dataset in one transaction of its own (upsertSamples). */
export function addSampleColumns(ctx: Context, dataset: DatasetShape, batch: SampleColumns, field: SampleFieldNamer): Promise<{ added: number; unchanged: number }> {
  return ctx.db.transaction((tx) => upsertSamples(tx, dataset, batch, field));
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
      const id = await insertDataset(tx, {
        name: input.name,
        description: input.description ?? null,
        length: input.length,
        channels: input.channels,
        classNames: input.classNames,
        lengthResample: input.lengthResample ?? null,
      });
      const shape = { id, length: input.length, channels: input.channels, classNames: input.classNames };
      await validateSamples(tx, shape, samples, 'input.samples');
      await insertSamples(tx, id, samples);
      return id;
    }).then((id) => afterCommit(() => findDatasetOrThrow(ctx.db, id)));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    const existing = await findDatasetByName(ctx.db, input.name);
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
  const rows = await samplesOfDataset(ctx.db, stored.id);
  if (rows.length !== samples.length) return false;
  const byIndex = new Map(rows.map((r) => [r.index, r]));
  return samples.every((s) => {
    const row = byIndex.get(s.index);
    return (
      row !== undefined &&
      row.label === s.label &&
      row.split === s.split &&
      row.originalLength === (s.originalLength ?? null) &&
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
    await lockDataset(tx, datasetId);
    await validateSamples(tx, dataset, samples);
    return insertSamples(tx, datasetId, samples);
  });
}

export async function deleteDataset(ctx: Context, id: number): Promise<void> {
  const count = await deleteDatasetById(ctx.db, id);
  if (count === 0) throw new NotFoundError('Dataset', id);
  ctx.loaders.datasetById.clear(id);
  // Its runs' checkpoints went with it: the weight layers only they held go too.
  await purgeUnusedLayers(ctx.db);
}

/*
 * The lists behind the datasets' connections, each a keyset page in a stable order: rows inserted
 * while a client pages land after its cursor or before it, never as a duplicate or a gap.
 */

export function listDatasets(ctx: Context, args: PageArgs & { nameContains?: string | null }): Promise<ConnectionRow<DatasetRow>> {
  return pageById(
    ctx.config.maxPageSize,
    'datasets',
    args,
    (after, take) => datasetPage(ctx.db, args.nameContains, after, take),
    () => countDatasets(ctx.db, args.nameContains),
  );
}

/** A dataset's samples in index order. */
export async function listSamples(ctx: Context, datasetId: number, args: PageArgs & { filter?: SampleWhere | null }): Promise<ConnectionRow<SampleRow>> {
  const list = `samples:${datasetId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const after = afterNumber(list, args.after);
  const f = args.filter ?? {};
  const rows = limit === 0 ? [] : await samplePage(ctx.db, datasetId, f, after, limit + 1);
  return toConnection(list, rows, limit, (row) => [row.index], () => countSamples(ctx.db, datasetId, f));
}
