import type { Database } from '../../platform/db/database.js';
import { Prisma } from '../../platform/db/generated/client.js';
import type { Sql } from '../../platform/db/sql.js';
import type { SampleFilter } from './query.js';
import { param, type Statement } from '../../platform/db/statement.js';
import { longSource, termTable, whereClause } from './query-sql.js';
import type { ScalarTermName } from './term-columns.js';

/**
 * The storage of term statistics: each statistic is one statement grouped by checkpoint (and
 * label) over every cell a request reads together, its rows parsed into a map by cell
 * (`cellKey`). The statements read the terms through query-sql.ts's `longSource`.
 */

/** Which values a statistic is over: one term at some checkpoints, the samples a filter keeps. */
export interface StatsScope {
  term: ScalarTermName;
  targetKey: string | null;
  subset: string;
  filter: SampleFilter;
  checkpointIds: number[];
}

export interface Summary {
  count: number;
  mean: number | null;
  stddev: number | null;
  /** The smallest and largest values as stored (float32). */
  min: number | null;
  max: number | null;
  /** The same as exact doubles, for histogram bounds. */
  lo: number | null;
  hi: number | null;
}

/** The key of a cell in the maps below: a checkpoint, and a label (null: all samples). */
export const cellKey = (checkpointId: number, label: number | null) => `${checkpointId}/${label ?? ''}`;

function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** Count, mean, standard deviation, smallest and largest value per cell. */
export async function termSummaries(sql: Sql, scope: StatsScope, byLabel: boolean): Promise<Map<string, Summary>> {
  const rows = await grouped(sql, scope, byLabel, (v) => ({
    select: Prisma.sql`count(*)::int AS n, avg(${v}::float8) AS mean, stddev_samp(${v}::float8) AS stddev, min(${v}) AS min, max(${v}) AS max,
                   min(${v})::float8 AS lo, max(${v})::float8 AS hi`,
  }));
  return new Map(
    rows.map(({ key, row }) => [
      key,
      { count: Number(row.n), mean: num(row.mean), stddev: num(row.stddev), min: num(row.min), max: num(row.max), lo: num(row.lo), hi: num(row.hi) },
    ]),
  );
}

/** The quantiles `at` (probabilities) per cell, continuous (percentile_cont). */
export async function termQuantiles(sql: Sql, scope: StatsScope, byLabel: boolean, at: readonly number[]): Promise<Map<string, (number | null)[]>> {
  const rows = await grouped(sql, scope, byLabel, (v) => ({ select: Prisma.sql`percentile_cont(${param(at, 'float8[]')}) WITHIN GROUP (ORDER BY ${v}::float8) AS q` }));
  return new Map(rows.map(({ key, row }) => [key, (row.q as (number | string | null)[]).map(num)]));
}

/**
 * Per cell, how many values fall in each of `bins` equal bins over [lo, hi]: bucket b (1 … bins;
 * 0 or less below lo, bins + 1 above hi) with its count, only buckets that have values.
 */
export async function termHistogramCounts(sql: Sql, scope: StatsScope, byLabel: boolean, bins: number, lo: number, hi: number): Promise<Map<string, { b: number; n: number }[]>> {
  const rows = await grouped(sql, scope, byLabel, (v) => {
    const n = param(bins, 'int');
    const h = param(hi, 'float8');
    // width_bucket puts the upper bound itself in bucket n + 1; the last bin is closed instead.
    const bucket = Prisma.sql`CASE WHEN ${v}::float8 = ${h} THEN ${n} ELSE width_bucket(${v}::float8, ${param(lo, 'float8')}, ${h}, ${n}) END`;
    return { select: Prisma.sql`${bucket} AS b, count(*)::int AS n`, groupBy: 1 };
  });
  const out = new Map<string, { b: number; n: number }[]>();
  for (const { key, row } of rows) {
    const list = out.get(key) ?? [];
    list.push({ b: Number(row.b), n: Number(row.n) });
    out.set(key, list);
  }
  return out;
}

/**
 * Runs one aggregate grouped by checkpoint (and label): `build` gets the term's column and returns
 * the SELECT items (any value in them bound with `param`) and how many of them are extra grouping
 * columns (they come first). Each row comes with the key of its cell.
 */
async function grouped(
  sql: Sql,
  spec: StatsScope,
  byLabel: boolean,
  build: (v: Statement) => { select: Statement; groupBy?: number },
): Promise<{ key: string; row: Record<string, unknown> }[]> {
  const source = longSource({
    checkpointIds: spec.checkpointIds,
    drive: termTable(spec.term, spec.subset),
    targetKey: spec.targetKey,
    subset: spec.subset,
    filter: spec.filter,
  });
  const v = source.column(spec.term);
  const { select, groupBy = 0 } = build(v);
  const groups = [Prisma.sql`${source.checkpointColumn} AS c`, ...(byLabel ? [Prisma.raw('s.label AS l')] : [])];
  const positions = Prisma.raw(Array.from({ length: groups.length + groupBy }, (_, i) => String(i + 1)).join(', '));
  const statement = Prisma.sql`SELECT ${Prisma.join(groups, ', ')}, ${select} FROM ${source.from} ${whereClause([...source.where, Prisma.sql`${v} IS NOT NULL`])} GROUP BY ${positions}`;
  // named: curation.termStats
  const rows = await sql.query<Record<string, unknown>>(statement.text, statement.values);
  return rows.map((row) => ({ key: cellKey(Number(row.c), byLabel ? Number(row.l) : null), row }));
}

/** A run's checkpoint ids in step order. */
export async function checkpointIdsOfRun(db: Database, runId: number): Promise<number[]> {
  // named: checkpoint.idsOfRun
  const checkpoints = await db.prisma.checkpoint.findMany({ where: { runId }, orderBy: { step: 'asc' }, select: { id: true } });
  return checkpoints.map((c) => c.id);
}
