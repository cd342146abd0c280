import { keysetAfter, longSource, orderBy, SqlParams, whereClause } from '../../db/curation-sql.js';
import { scalarTerm } from '../../db/curation-terms.js';
import { BadUserInputError } from '../../errors.js';
import { decodeCursor, pageSize, toConnection } from '../../schema/pagination.js';
import type { ConnectionRow } from '../../schema/rows.js';
import { ensureTerms } from '../terms-availability.js';
import { checkpointInfo, classNameOf, resolveTarget, type CheckpointInfo, type CurationContext } from './context.js';
import { queryDigest, requiredTerms, scopeOf, type SampleQuery } from './query.js';

/** A sample with its terms at one checkpoint, as a curation query returns it. */
export interface RankedSampleRow {
  checkpointId: number;
  sampleId: number;
  index: number;
  label: number;
  className: string;
  split: string;
  /** The value of the order term. */
  score: number;
  loss: number | null;
  correct: boolean | null;
  aNorm: number | null;
  hTrace: number | null;
  hMinEig: number | null;
  gNorm: number | null;
  kNorm: number | null;
  kTrace: number | null;
  kCross: number | null;
}

/** A query checked and bound to its checkpoint: what the SQL builders and the export need. */
export interface PreparedQuery {
  info: CheckpointInfo;
  query: SampleQuery;
  targetKey: string | null;
  /** Cursor list name: the checkpoint and a digest of the query's shape. */
  list: string;
}

/** Resolves the checkpoint and target and makes sure every term the query reads is there (ensureTerms). */
export async function prepareQuery(ctx: CurationContext, checkpointId: number, query: SampleQuery): Promise<PreparedQuery> {
  const info = await checkpointInfo(ctx, checkpointId);
  const targetKey = await resolveTarget(ctx, info.datasetId, query.target);
  const required = requiredTerms([query.order.term], query.filter, targetKey);
  await ensureTerms(ctx, checkpointId, required, scopeOf(info.datasetId, query.filter));
  return { info, query, targetKey, list: `ranked:${checkpointId}:${queryDigest([query.filter, query.order, targetKey])}` };
}

/**
 * The statement of a prepared query: samples with their terms, in (order term, sample id) order,
 * after a keyset position, at most `limit` rows (null: all of them, for a cursor).
 */
export function rankStatement(prepared: PreparedQuery, after: { value: number; sampleId: number } | null, limit: number | null): { text: string; values: unknown[] } {
  const { query, targetKey, info } = prepared;
  const p = new SqlParams();
  const source = longSource(p, {
    checkpointIds: [info.id],
    drive: scalarTerm(query.order.term).cross ? 'cross' : 'metric',
    targetKey,
    filter: query.filter,
  });
  const value = source.column(query.order.term);
  const where = [...source.where, `${value} IS NOT NULL`];
  if (after) where.push(keysetAfter(p, value, source.sampleIdColumn, query.order.direction, after));
  const text = `SELECT ${source.sampleIdColumn} AS "sampleId", s.index, s.label, s.split, ${value} AS score, ${source.values}
    FROM ${source.from} ${whereClause(where)}
    ORDER BY ${orderBy(value, source.sampleIdColumn, query.order.direction)}${limit === null ? '' : ` LIMIT ${p.add(limit, 'int')}`}`;
  return { text, values: p.values };
}

export function countStatement(prepared: PreparedQuery): { text: string; values: unknown[] } {
  const { query, targetKey, info } = prepared;
  const p = new SqlParams();
  const source = longSource(p, { checkpointIds: [info.id], drive: scalarTerm(query.order.term).cross ? 'cross' : 'metric', targetKey, filter: query.filter });
  const value = source.column(query.order.term);
  return { text: `SELECT count(*)::int AS n FROM ${source.from} ${whereClause([...source.where, `${value} IS NOT NULL`])}`, values: p.values };
}

type RawRow = Omit<RankedSampleRow, 'checkpointId' | 'className'>;

/** Rows from the database into RankedSampleRows (ints may arrive as strings from some drivers). */
export function toRankedRows(info: CheckpointInfo, rows: readonly RawRow[]): RankedSampleRow[] {
  return rows.map((r) => ({
    ...r,
    checkpointId: info.id,
    sampleId: Number(r.sampleId),
    index: Number(r.index),
    label: Number(r.label),
    className: classNameOf(info.classNames, Number(r.label)),
  }));
}

/** Decodes `after` for a prepared query: [value, sampleId]. */
export function afterKey(prepared: PreparedQuery, after: string | null | undefined): { value: number; sampleId: number } | null {
  const key = decodeCursor(prepared.list, after);
  if (key === null) return null;
  const [value, sampleId] = key;
  if (key.length !== 2 || typeof value !== 'number' || typeof sampleId !== 'number' || !Number.isInteger(sampleId)) {
    throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  }
  return { value, sampleId };
}

/**
 * Samples at a checkpoint, filtered and ordered by any term (ties by sample id in the same
 * direction), as a keyset-paginated connection; totalCount runs only when asked for.
 */
export async function rankSamples(
  ctx: CurationContext,
  checkpointId: number,
  query: SampleQuery,
  page: { first?: number | null; after?: string | null },
): Promise<ConnectionRow<RankedSampleRow>> {
  const limit = pageSize(page.first, ctx.config.maxPageSize);
  const prepared = await prepareQuery(ctx, checkpointId, query);
  const after = afterKey(prepared, page.after);
  let rows: RankedSampleRow[] = [];
  if (limit > 0) {
    const { text, values } = rankStatement(prepared, after, limit + 1);
    // named: curation.rankPage
    rows = toRankedRows(prepared.info, await ctx.db.sql.query<RawRow>(text, values));
  }
  return toConnection(prepared.list, rows, limit, (row) => [row.score, row.sampleId], async () => {
    const { text, values } = countStatement(prepared);
    // named: curation.rankCount
    const [row] = await ctx.db.sql.query<{ n: number }>(text, values);
    return Number(row?.n ?? 0);
  });
}
