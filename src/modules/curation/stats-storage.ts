import type { Database } from '../../platform/db/database.js';
import { Prisma } from '../../platform/db/generated/client.js';
import type { Sql } from '../../platform/db/sql.js';
import type { SampleFilter } from './query.js';
import { and, param, raw, sql as statement, type Statement } from '../../platform/db/statement.js';
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

/** Intervals of a sketch's grid: it holds the exact quantiles at p = i / SKETCH_GRID, i = 0 … SKETCH_GRID. */
export const SKETCH_GRID = 1000;
const GRID_POINTS = Array.from({ length: SKETCH_GRID + 1 }, (_, i) => i / SKETCH_GRID);

/** A cell's exact summary and its quantile grid (`SKETCH_GRID`). */
export interface Sketch extends Summary {
  grid: number[];
}

/** Which values a sketch is of: one term at some checkpoints over every sample (no filter). */
export type SketchScope = Omit<StatsScope, 'filter'>;

/**
 * The sketches of the cells of `scope` (each checkpoint over all samples, and per class when
 * `withClasses`; a grid is a thousand numbers, not read when not asked for): the
 * stored ones that are current (their epoch is their checkpoint's; the term tables' triggers bump
 * it on every write), and, for checkpoints without a current one, built now in ONE statement (one
 * sort per checkpoint and class, the cost of one exact quantile request) that stores them with the
 * epoch read in the same snapshot. A write that commits after that snapshot has bumped the epoch,
 * so what this stores is stale from the moment the write is visible, never taken for current.
 */
export async function termSketches(sql: Sql, scope: SketchScope, withClasses: boolean): Promise<Map<string, Sketch>> {
  const keys = { term: scope.term, subset: scope.subset, target: scope.targetKey ?? '' };
  // named: curation.termSketch.read
  const stored = await sql.query<Record<string, unknown>>(
    `SELECT t.checkpoint_id AS c, t.label AS l, t.count AS n, t.mean, t.stddev, t.min, t.max, t.lo, t.hi, t.grid
     FROM term_sketch t LEFT JOIN term_sketch_epoch e ON e.checkpoint_id = t.checkpoint_id
     WHERE t.checkpoint_id = ANY($1::int[]) AND t.term = $2 AND t.subset = $3 AND t.target_key = $4 AND (t.label = -1 OR $5::boolean)
       AND t.epoch = coalesce(e.epoch, 0)`,
    [scope.checkpointIds, keys.term, keys.subset, keys.target, withClasses],
  );
  const current = new Set(stored.filter((r) => Number(r.l) === -1).map((r) => Number(r.c)));
  const missing = scope.checkpointIds.filter((id) => !current.has(id));
  const rows = stored.filter((r) => current.has(Number(r.c)));
  if (missing.length) rows.push(...(await buildSketches(sql, { ...scope, checkpointIds: missing }, keys)));
  return new Map(
    rows.map((row) => [
      cellKey(Number(row.c), Number(row.l) === -1 ? null : Number(row.l)),
      {
        count: Number(row.n),
        mean: num(row.mean),
        stddev: num(row.stddev),
        min: num(row.min),
        max: num(row.max),
        lo: num(row.lo),
        hi: num(row.hi),
        grid: (row.grid as (number | string)[]).map(Number),
      },
    ]),
  );
}

async function buildSketches(sql: Sql, scope: SketchScope, keys: { term: string; subset: string; target: string }): Promise<Record<string, unknown>[]> {
  const source = longSource({ checkpointIds: scope.checkpointIds, drive: termTable(scope.term, scope.subset), targetKey: scope.targetKey, subset: scope.subset, filter: {} });
  const v = source.column(scope.term);
  const c = source.checkpointColumn;
  const columns = raw('checkpoint_id, term, subset, target_key, label, epoch, count, mean, stddev, min, max, lo, hi, grid, built_at');
  const updates = raw(
    ['epoch', 'count', 'mean', 'stddev', 'min', 'max', 'lo', 'hi', 'grid', 'built_at'].map((col) => `${col} = EXCLUDED.${col}`).join(', '),
  );
  // Per checkpoint (label -1) and per checkpoint and class, in one pass over the checkpoints' rows.
  const built = statement`WITH e AS (SELECT checkpoint_id, epoch FROM term_sketch_epoch WHERE checkpoint_id = ANY(${param(scope.checkpointIds, 'int[]')})),
    b AS (
      SELECT ${c} AS c, CASE WHEN grouping(s.label) = 1 THEN -1 ELSE s.label END AS l, count(*)::int AS n,
             avg(${v}::float8) AS mean, stddev_samp(${v}::float8) AS stddev, min(${v}) AS min, max(${v}) AS max, min(${v})::float8 AS lo, max(${v})::float8 AS hi,
             percentile_cont(${param(GRID_POINTS, 'float8[]')}) WITHIN GROUP (ORDER BY ${v}::float8) AS grid
      FROM ${source.from} WHERE ${and([...source.where, statement`${v} IS NOT NULL`])}
      GROUP BY GROUPING SETS ((${c}), (${c}, s.label))
    ),
    w AS (
      INSERT INTO term_sketch (${columns})
      SELECT b.c, ${param(keys.term, 'text')}, ${param(keys.subset, 'text')}, ${param(keys.target, 'text')}, b.l, coalesce(e.epoch, 0), b.n, b.mean, b.stddev, b.min, b.max, b.lo, b.hi, b.grid, now()
      FROM b LEFT JOIN e ON e.checkpoint_id = b.c ORDER BY b.c, b.l
      ON CONFLICT (checkpoint_id, term, subset, target_key, label) DO UPDATE SET ${updates} WHERE term_sketch.epoch <= EXCLUDED.epoch
    )
    SELECT c, l, n, mean, stddev, min, max, lo, hi, grid FROM b`;
  // named: curation.termSketch.build
  return sql.query<Record<string, unknown>>(built.text, built.values);
}

/** A run's checkpoint ids in step order. */
export async function checkpointIdsOfRun(db: Database, runId: number): Promise<number[]> {
  // named: checkpoint.idsOfRun
  const checkpoints = await db.prisma.checkpoint.findMany({ where: { runId }, orderBy: { step: 'asc' }, select: { id: true } });
  return checkpoints.map((c) => c.id);
}
