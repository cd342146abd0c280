import type { Context } from './context.js';
import type { Checkpoint, Prisma } from '../platform/db/generated/client.js';
import { CHECKPOINT_COLUMNS } from './loaders.js';
import { afterId, decodeCursor, pageSize, toConnection } from '../platform/graphql/pagination.js';
import type { CheckpointRow, ConnectionRow, DatasetRow, ModelRow, RunRow, SampleMetricRow, SampleRow } from '../platform/graphql/rows.js';
import { BadUserInputError } from '../platform/errors.js';

/**
 * The lists behind every connection, each a keyset page in a stable order: rows inserted while a
 * client pages land after its cursor or before it, never as a duplicate or a gap.
 */
interface PageArgs {
  first?: number | null;
  after?: string | null;
}

async function pageById<T extends { id: number }>(
  ctx: Context,
  list: string,
  args: PageArgs,
  fetch: (afterWhere: { id?: { gt: number } }, take: number) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<ConnectionRow<T>> {
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const after = afterId(list, args.after);
  const rows = limit === 0 ? [] : await fetch(after === null ? {} : { id: { gt: after } }, limit + 1);
  return toConnection(list, rows, limit, (row) => [row.id], count);
}

export function listDatasets(ctx: Context, args: PageArgs & { nameContains?: string | null }): Promise<ConnectionRow<DatasetRow>> {
  const where: Prisma.DatasetWhereInput = args.nameContains ? { name: { contains: args.nameContains, mode: 'insensitive' } } : {};
  return pageById(
    ctx,
    'datasets',
    args,
    (idWhere, take) => ctx.db.prisma.dataset.findMany({ where: { ...where, ...idWhere }, orderBy: { id: 'asc' }, take }),
    () => ctx.db.prisma.dataset.count({ where }),
  );
}

export function listModels(
  ctx: Context,
  args: PageArgs & { format?: 'TFJS_LAYERS' | 'BUILTIN' | null; nameContains?: string | null },
): Promise<ConnectionRow<ModelRow>> {
  const where: Prisma.ModelWhereInput = {
    ...(args.format ? { format: args.format } : {}),
    ...(args.nameContains ? { name: { contains: args.nameContains, mode: 'insensitive' } } : {}),
  };
  return pageById(
    ctx,
    'models',
    args,
    (idWhere, take) => ctx.db.prisma.model.findMany({ where: { ...where, ...idWhere }, orderBy: { id: 'asc' }, take }),
    () => ctx.db.prisma.model.count({ where }),
  );
}

export function listRuns(ctx: Context, args: PageArgs & { where: Prisma.RunWhereInput }): Promise<ConnectionRow<RunRow>> {
  return pageById(
    ctx,
    'runs',
    args,
    (idWhere, take) => ctx.db.prisma.run.findMany({ where: { ...args.where, ...idWhere }, orderBy: { id: 'asc' }, take }),
    () => ctx.db.prisma.run.count({ where: args.where }),
  );
}

export interface SampleWhere {
  split?: string | null;
  label?: number | null;
  indexFrom?: number | null;
  indexTo?: number | null;
}

/** A dataset's samples in index order. */
export async function listSamples(ctx: Context, datasetId: number, args: PageArgs & { filter?: SampleWhere | null }): Promise<ConnectionRow<SampleRow>> {
  const list = `samples:${datasetId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const key = decodeCursor(list, args.after);
  const after = key?.[0];
  if (key && (key.length !== 1 || typeof after !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  const f = args.filter ?? {};
  const index: Prisma.IntFilter = {};
  if (f.indexFrom !== null && f.indexFrom !== undefined) index.gte = f.indexFrom;
  if (f.indexTo !== null && f.indexTo !== undefined) index.lte = f.indexTo;
  const where: Prisma.SampleWhereInput = {
    datasetId,
    ...(f.split ? { split: f.split } : {}),
    ...(f.label !== null && f.label !== undefined ? { label: f.label } : {}),
    ...(Object.keys(index).length ? { index } : {}),
  };
  const pageWhere: Prisma.SampleWhereInput = typeof after === 'number' ? { AND: [where, { index: { gt: after } }] } : where;
  const rows = limit === 0 ? [] : await ctx.db.prisma.sample.findMany({ where: pageWhere, orderBy: { index: 'asc' }, take: limit + 1 });
  return toConnection(list, rows, limit, (row) => [row.index], () => ctx.db.prisma.sample.count({ where }));
}

/** A run's checkpoints in step order. */
export async function listCheckpoints(ctx: Context, runId: number, args: PageArgs): Promise<ConnectionRow<CheckpointRow>> {
  const list = `checkpoints:${runId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const key = decodeCursor(list, args.after);
  const after = key?.[0];
  if (key && (key.length !== 1 || typeof after !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  // Plain SQL (rows in the Prisma shape): a run's checkpoints are read with nearly every run, and
  // Prisma's per-call query compilation cost more than the statement itself.
  const rows =
    limit === 0
      ? []
      : typeof after === 'number'
        ? await ctx.db.sql.query<Checkpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE run_id = $1 AND step > $2 ORDER BY step LIMIT $3`, [runId, after, limit + 1])
        : await ctx.db.sql.query<Checkpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE run_id = $1 ORDER BY step LIMIT $2`, [runId, limit + 1]);
  return toConnection(list, rows, limit, (row) => [row.step], () => ctx.db.prisma.checkpoint.count({ where: { runId } }));
}

/** A checkpoint's stored metrics in sample-id order. */
export async function listMetrics(ctx: Context, checkpointId: number, args: PageArgs): Promise<ConnectionRow<SampleMetricRow>> {
  const list = `metrics:${checkpointId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const key = decodeCursor(list, args.after);
  const after = key?.[0];
  if (key && (key.length !== 1 || typeof after !== 'number')) throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  const where: Prisma.SampleMetricWhereInput = { checkpointId, ...(typeof after === 'number' ? { sampleId: { gt: after } } : {}) };
  const rows = limit === 0 ? [] : await ctx.db.prisma.sampleMetric.findMany({ where, orderBy: { sampleId: 'asc' }, take: limit + 1 });
  return toConnection(list, rows, limit, (row) => [row.sampleId], () => ctx.db.prisma.sampleMetric.count({ where: { checkpointId } }));
}
