import { and, empty, join, param, raw, sql, type Statement } from '../../platform/db/statement.js';
import { invariant } from '../../platform/errors.js';
import { SCALAR_TERM_SPECS, scalarTerm, type ScalarTermName } from './term-columns.js';
import { querySubset, type BoundQuery, type Direction, type SampleFilter } from './query.js';
import type { Cut, Strategy } from './strategy.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';

/**
 * The SQL text behind curation queries (rank, filter, statistics, selection, export), composed with
 * Prisma's SQL template tag (`Prisma.sql`, `join`, `raw`, `empty`: sql-template-tag, re-exported by
 * the generated client, so no other dependency). A composed `Statement` carries its text with `$n`
 * placeholders (`.text`) and its values in the same order (`.values`), and the storage files run it
 * as plain SQL with `sql.query(statement.text, statement.values)`: the tag only composes text,
 * nothing goes through Prisma's query engine. User values only ever travel as bound parameters
 * (`param`, each with its type cast); the only text spliced in with `raw` is fixed: table names and
 * aliases from `TABLES`, column names from the fixed term list (`SCALAR_TERM_SPECS`), SQL keywords
 * and the positions and indices this file counts itself. A value used twice in one statement is
 * bound twice (the tag numbers placeholders by position), which plans the same: statements run
 * unnamed, so PostgreSQL plans them with the values in hand.
 * Pure text: nothing here runs a statement, hence a `-sql.ts` file and not a storage file. The
 * curation storage files (ranking-, stats-, selections- and export-storage.ts) run them, each under
 * a `named:` comment; bench/query-run.ts replays `rankStatement` as the server sends it.
 */

/**
 * Where a term's values are, in a query over the parameter subset `subset`: sample_metric (`metric`),
 * sample_subset_metric (`subset`: kNorm and kTrace over a named subset), or sample_cross_metric
 * (`cross`: kCross, over any subset). Every statement below reads terms through this one mapping.
 */
export type TermTable = 'metric' | 'subset' | 'cross';

export function termTable(term: ScalarTermName | 'CORRECT', subset: string): TermTable {
  if (term === 'CORRECT') return 'metric';
  const spec = scalarTerm(term);
  if (spec.cross) return 'cross';
  return spec.kernel && subset !== ALL_PARAMETERS ? 'subset' : 'metric';
}

const TABLES: Record<TermTable, { table: string; alias: string }> = {
  metric: { table: 'sample_metric', alias: 'm' },
  subset: { table: 'sample_subset_metric', alias: 'k' },
  cross: { table: 'sample_cross_metric', alias: 'x' },
};

/** `table alias` of a term table, its alias carrying `suffix` (a checkpoint's index, or nothing). */
function tableAs(table: TermTable, suffix = ''): Statement {
  return raw(`${TABLES[table].table} ${TABLES[table].alias}${suffix}`);
}

/** The tables whose values a filter's conditions read. */
function filterTables(filter: SampleFilter, subset: string): Set<TermTable> {
  const out = new Set<TermTable>((filter.terms ?? []).map((r) => termTable(r.term, subset)));
  if (filter.correct !== null && filter.correct !== undefined) out.add('metric');
  return out;
}

/** The key conditions of a table beyond (checkpoint, sample): the subset, and the target set of kCross. */
function keyConditions(table: TermTable, alias: string, keys: { subset: Statement | null; target: Statement | null }): Statement[] {
  if (table === 'subset') return [sql`${raw(alias)}.subset = ${keys.subset!}`];
  if (table === 'cross') return [sql`${raw(alias)}.target_key = ${keys.target!}`, sql`${raw(alias)}.subset = ${keys.subset!}`];
  return [];
}

/** The alias.column holding a term (or `correct`) when table aliases carry `suffix` (a checkpoint's index, or nothing). */
function termColumn(term: ScalarTermName | 'CORRECT', subset: string, suffix = ''): Statement {
  const alias = `${TABLES[termTable(term, subset)].alias}${suffix}`;
  return raw(term === 'CORRECT' ? `${alias}.correct` : `${alias}.${scalarTerm(term).column}`);
}

/** Sample-level conditions on `s` (sample) and the alias whose `sample_id` is the sample's id. */
function scopeConditions(filter: SampleFilter, sampleIdColumn: Statement): Statement[] {
  const where: Statement[] = [];
  if (filter.labels?.length) where.push(sql`s.label = ANY(${param(filter.labels, 'int[]')})`);
  if (filter.splits?.length) where.push(sql`s.split = ANY(${param(filter.splits, 'text[]')})`);
  if (filter.sampleIds?.length) where.push(sql`${sampleIdColumn} = ANY(${param(filter.sampleIds, 'int[]')})`);
  return where;
}

/** Term conditions, reading each term through `column(term)`. */
function termConditions(filter: SampleFilter, column: (term: ScalarTermName | 'CORRECT') => Statement): Statement[] {
  const where: Statement[] = [];
  for (const range of filter.terms ?? []) {
    const col = column(range.term);
    if (range.min !== null && range.min !== undefined) where.push(sql`${col} >= ${param(range.min, 'real')}`);
    if (range.max !== null && range.max !== undefined) where.push(sql`${col} <= ${param(range.max, 'real')}`);
  }
  if (filter.correct !== null && filter.correct !== undefined) where.push(sql`${column('CORRECT')} = ${param(filter.correct, 'boolean')}`);
  return where;
}

/** The value columns of a RankedSample row, named as the GraphQL fields are: kNorm and kTrace over the query's subset. */
function valueColumns(hasCross: boolean, subset: string): Statement {
  const metric = SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => `${termColumn(t.term, subset).text} AS "${t.field}"`);
  return raw([...metric, 'm.correct AS "correct"', hasCross ? 'x.k_cross AS "kCross"' : 'NULL::real AS "kCross"'].join(', '));
}

export interface LongSource {
  /**
   * FROM … JOIN …, with `s` the sample, `m` sample_metric, `k` sample_subset_metric (a named subset),
   * `x` sample_cross_metric (when a target is given).
   */
  from: Statement;
  where: Statement[];
  /** The alias.column holding a term (or `correct`). */
  column(term: ScalarTermName | 'CORRECT'): Statement;
  checkpointColumn: Statement;
  sampleIdColumn: Statement;
  /** The term columns of a RankedSample, for SELECT lists. */
  values: Statement;
}

export interface LongSourceOptions {
  checkpointIds: readonly number[];
  /** The table whose index drives the scan: the one holding the order (or statistics) term (`termTable`). */
  drive: TermTable;
  targetKey: string | null;
  /** The parameter subset kernel terms are over (default 'all'). */
  subset?: string;
  filter: SampleFilter;
}

/**
 * One row per (checkpoint, sample) over the given checkpoints: the driving table, the sample, and
 * the other term tables joined (inner when the filter needs their values, left when they are only
 * shown). With one checkpoint the condition is an equality, so an index on (checkpoint_id, …, term)
 * also orders.
 */
export function longSource(o: LongSourceOptions): LongSource {
  invariant(o.checkpointIds.length > 0, 'a curation query names at least one checkpoint');
  invariant(o.drive !== 'cross' || o.targetKey !== null, 'kCross needs a target');
  const subset = o.subset ?? ALL_PARAMETERS;
  invariant(o.drive !== 'subset' || subset !== ALL_PARAMETERS, "kernel terms over 'all' are in sample_metric");
  const ids = o.checkpointIds.length === 1 ? sql`= ${param(o.checkpointIds[0], 'int')}` : sql`= ANY(${param(o.checkpointIds, 'int[]')})`;
  const keys = {
    target: o.targetKey === null ? null : param(o.targetKey, 'text'),
    subset: o.drive !== 'metric' || o.targetKey !== null || subset !== ALL_PARAMETERS ? param(subset, 'text') : null,
  };
  const driving = TABLES[o.drive].alias;
  const drivingSample = raw(`${driving}.sample_id`);
  const drivingCheckpoint = raw(`${driving}.checkpoint_id`);
  const needed = filterTables(o.filter, subset);
  const tables: TermTable[] = ['metric', ...(subset !== ALL_PARAMETERS ? (['subset'] as const) : []), ...(o.targetKey !== null ? (['cross'] as const) : [])];
  const from: Statement[] = [sql`${tableAs(o.drive)} JOIN sample s ON s.id = ${drivingSample}`];
  const where = [sql`${drivingCheckpoint} ${ids}`, ...keyConditions(o.drive, driving, keys)];
  for (const table of tables) {
    if (table === o.drive) continue;
    const { alias } = TABLES[table];
    const on = [sql`${raw(alias)}.checkpoint_id = ${drivingCheckpoint}`, ...keyConditions(table, alias, keys), sql`${raw(alias)}.sample_id = ${drivingSample}`];
    from.push(sql`${raw(needed.has(table) ? 'JOIN' : 'LEFT JOIN')} ${tableAs(table)} ON ${and(on)}`);
  }
  const column = (term: ScalarTermName | 'CORRECT') => termColumn(term, subset);
  where.push(...scopeConditions(o.filter, drivingSample), ...termConditions(o.filter, column));
  return {
    from: join(from, ' '),
    where,
    column,
    checkpointColumn: drivingCheckpoint,
    sampleIdColumn: drivingSample,
    values: valueColumns(o.targetKey !== null, subset),
  };
}

/** Keyset condition after (value, sampleId) in the order (value, sample id) both `direction`. */
export function keysetAfter(valueColumn: Statement, sampleIdColumn: Statement, direction: Direction, after: { value: number; sampleId: number }, valueType: 'real' | 'float8' = 'real'): Statement {
  const v = param(after.value, valueType);
  const id = param(after.sampleId, 'int');
  // The single-column bound is redundant with the row comparison but lets the (checkpoint, term) index seek.
  return direction === 'DESC'
    ? sql`${valueColumn} <= ${v} AND (${valueColumn}, ${sampleIdColumn}) < (${v}, ${id})`
    : sql`${valueColumn} >= ${v} AND (${valueColumn}, ${sampleIdColumn}) > (${v}, ${id})`;
}

/** `ORDER BY` items: the value, then the sample id, both in `direction` (a fixed keyword). */
export function orderBy(valueColumn: Statement, sampleIdColumn: Statement, direction: Direction): Statement {
  const d = raw(direction === 'DESC' ? 'DESC' : 'ASC');
  return sql`${valueColumn} ${d}, ${sampleIdColumn} ${d}`;
}

export interface WideSourceOptions {
  checkpointIds: readonly number[];
  /** One weight per checkpoint, summing to 1. */
  weights: readonly number[];
  term: ScalarTermName;
  targetKey: string | null;
  /** The parameter subset kernel terms are over (default 'all'). */
  subset?: string;
  filter: SampleFilter;
}

export interface WideSource {
  /** SELECT list items: sample_id, label, score, src_0 … src_{K-1}. */
  select: Statement;
  from: Statement;
  where: Statement[];
}

/**
 * One row per sample, its term at each checkpoint joined side by side (aliases m0, k0, x0, m1, …),
 * and the score: the term itself at one checkpoint, or the weighted mean Σ w_c · v_c across several,
 * summed in checkpoint order so the same data always gives the same double. Term conditions of
 * the filter must hold at every checkpoint. Inner joins: a sample without the values is not a
 * candidate (and ensureTerms has made sure that no sample in scope lacks them).
 */
export function wideSource(o: WideSourceOptions): WideSource {
  invariant(o.checkpointIds.length > 0 && o.checkpointIds.length === o.weights.length, 'one weight per checkpoint');
  const subset = o.subset ?? ALL_PARAMETERS;
  const spec = scalarTerm(o.term);
  const scored = termTable(o.term, subset);
  invariant(scored !== 'cross' || o.targetKey !== null, 'kCross needs a target');
  // The scored term's table first, then whatever the filter reads, each once per checkpoint.
  const tables = [scored, ...[...filterTables(o.filter, subset)].filter((t) => t !== scored)];
  const keys = {
    target: tables.includes('cross') ? param(o.targetKey, 'text') : null,
    subset: tables.some((t) => t !== 'metric') ? param(subset, 'text') : null,
  };
  const first = `${TABLES[scored].alias}0`;
  const firstSample = raw(`${first}.sample_id`);
  const joins: Statement[] = [];
  const where: Statement[] = [];
  o.checkpointIds.forEach((checkpointId, i) => {
    const c = param(checkpointId, 'int');
    for (const table of tables) {
      const alias = `${TABLES[table].alias}${i}`;
      const conditions = [sql`${raw(alias)}.checkpoint_id = ${c}`, ...keyConditions(table, alias, keys)];
      // The first table is FROM; the others join on its sample id, conditions in their ON clauses.
      if (alias === first) {
        joins.push(tableAs(table, String(i)));
        where.push(...conditions);
      } else {
        joins.push(sql`JOIN ${tableAs(table, String(i))} ON ${and([sql`${raw(alias)}.sample_id = ${firstSample}`, ...conditions])}`);
      }
    }
    where.push(...termConditions(o.filter, (term) => termColumn(term, subset, String(i))));
  });
  where.push(...scopeConditions(o.filter, firstSample));
  const value = (i: number) => raw(`${TABLES[scored].alias}${i}.${spec.column}`);
  const score =
    o.checkpointIds.length === 1
      ? sql`${value(0)}::float8`
      : join(
          o.weights.map((w, i) => sql`${param(w, 'float8')} * ${value(i)}::float8`),
          ' + ',
        );
  const srcs = raw(o.checkpointIds.map((_, i) => `${value(i).text}_src AS src_${i}`).join(', '));
  const [head, ...rest] = joins;
  return {
    select: sql`${firstSample}, s.label, (${score}) AS score, ${srcs}`,
    from: sql`${head!} JOIN sample s ON s.id = ${firstSample} ${rest.length ? join(rest, ' ') : empty}`,
    where,
  };
}

export function whereClause(conditions: readonly Statement[]): Statement {
  return conditions.length ? sql`WHERE ${and(conditions)}` : empty;
}

/**
 * The statement of a query: samples with their terms, in (order term, sample id) order, after a
 * keyset position, at most `limit` rows (null: all of them, for a cursor).
 */
export function rankStatement(q: BoundQuery, after: { value: number; sampleId: number } | null, limit: number | null): Statement {
  const { query, targetKey } = q;
  const source = longSource({
    checkpointIds: [q.checkpointId],
    drive: termTable(query.order.term, querySubset(query)),
    targetKey,
    subset: querySubset(query),
    filter: query.filter,
  });
  const value = source.column(query.order.term);
  const where = [...source.where, sql`${value} IS NOT NULL`];
  if (after) where.push(keysetAfter(value, source.sampleIdColumn, query.order.direction, after));
  return sql`SELECT ${source.sampleIdColumn} AS "sampleId", s.index, s.label, s.split, ${value} AS score, ${source.values}
    FROM ${source.from} ${whereClause(where)}
    ORDER BY ${orderBy(value, source.sampleIdColumn, query.order.direction)}${limit === null ? empty : sql` LIMIT ${param(limit, 'int')}`}`;
}

export function countStatement(q: BoundQuery): Statement {
  const { query, targetKey } = q;
  const source = longSource({ checkpointIds: [q.checkpointId], drive: termTable(query.order.term, querySubset(query)), targetKey, subset: querySubset(query), filter: query.filter });
  const value = source.column(query.order.term);
  return sql`SELECT count(*)::int AS n FROM ${source.from} ${whereClause([...source.where, sql`${value} IS NOT NULL`])}`;
}

/** `pool AS (…)`, for a `WITH`: every candidate with its label, score and the producer of each checkpoint's value. */
export function poolCte(strategy: Strategy): Statement {
  const source = wideSource({
    checkpointIds: strategy.checkpointIds,
    weights: strategy.weights,
    term: strategy.term,
    targetKey: strategy.targetKey,
    subset: strategy.subset,
    filter: strategy.filter,
  });
  return sql`pool AS (SELECT ${source.select} FROM ${source.from} ${whereClause(source.where)})`;
}

/**
 * `sel AS (…)`: the selected samples with their rank (1 = best) in the strategy's order: score in
 * `direction`, ties by sample id in the same direction — the same data always gives the same rows.
 */
export function selectionCte(strategy: Strategy, cut: Cut): Statement {
  const d = strategy.direction === 'DESC' ? 'DESC' : 'ASC';
  const order = raw(`score ${d}, sample_id ${d}`);
  let body: Statement;
  if (cut.kind === 'limit') {
    body = sql`SELECT sample_id, label, score FROM pool ORDER BY ${order} LIMIT ${param(cut.k, 'int')}`;
  } else if (cut.kind === 'threshold') {
    body = sql`SELECT sample_id, label, score FROM pool WHERE score ${raw(d === 'DESC' ? '>=' : '<=')} ${param(cut.threshold, 'float8')}`;
  } else {
    body = sql`SELECT sample_id, label, score FROM (
        SELECT sample_id, label, score, row_number() OVER (PARTITION BY label ORDER BY ${order}) AS class_rank FROM pool
      ) r WHERE class_rank <= (${param(cut.quotas, 'int[]')})[label + 1]`;
  }
  return sql`sel AS (SELECT sample_id, label, score, (row_number() OVER (ORDER BY ${order}))::int AS rank FROM (${body}) t)`;
}
