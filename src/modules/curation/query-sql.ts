import { invariant } from '../../platform/errors.js';
import { SCALAR_TERM_SPECS, scalarTerm, type ScalarTermName } from './term-columns.js';
import { querySubset, type BoundQuery, type Direction, type SampleFilter } from './query.js';
import type { Cut, Strategy } from './strategy.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';

/**
 * The SQL text behind curation queries (rank, filter, statistics, selection, export). The statements are
 * assembled from fixed fragments: user values only ever travel as parameters (`SqlParams`), and
 * column names only come from the fixed term list (`SCALAR_TERM_SPECS`). Pure text: nothing here
 * runs a statement, hence a `-sql.ts` file and not a storage file. The curation storage files
 * (ranking-, stats-, selections- and export-storage.ts) run them, each under a `named:` comment;
 * bench/query-run.ts replays `rankStatement` as the server sends it.
 */

/** Collects parameters and hands out typed placeholders (`$3::real`). */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown, type: 'int' | 'int[]' | 'real' | 'float8' | 'float8[]' | 'text' | 'text[]' | 'boolean'): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

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

/** The tables whose values a filter's conditions read. */
function filterTables(filter: SampleFilter, subset: string): Set<TermTable> {
  const out = new Set<TermTable>((filter.terms ?? []).map((r) => termTable(r.term, subset)));
  if (filter.correct !== null && filter.correct !== undefined) out.add('metric');
  return out;
}

/** The key conditions of a table beyond (checkpoint, sample): the subset, and the target set of kCross. */
function keyConditions(table: TermTable, alias: string, keys: { subset: string; target: string | null }): string[] {
  if (table === 'subset') return [`${alias}.subset = ${keys.subset}`];
  if (table === 'cross') return [`${alias}.target_key = ${keys.target}`, `${alias}.subset = ${keys.subset}`];
  return [];
}

/** The alias.column holding a term (or `correct`) when table aliases carry `suffix` (a checkpoint's index, or nothing). */
function termColumn(term: ScalarTermName | 'CORRECT', subset: string, suffix = ''): string {
  const alias = `${TABLES[termTable(term, subset)].alias}${suffix}`;
  return term === 'CORRECT' ? `${alias}.correct` : `${alias}.${scalarTerm(term).column}`;
}

/** Sample-level conditions on `s` (sample) and the alias whose `sample_id` is the sample's id. */
function scopeConditions(p: SqlParams, filter: SampleFilter, sampleIdColumn: string): string[] {
  const where: string[] = [];
  if (filter.labels?.length) where.push(`s.label = ANY(${p.add(filter.labels, 'int[]')})`);
  if (filter.splits?.length) where.push(`s.split = ANY(${p.add(filter.splits, 'text[]')})`);
  if (filter.sampleIds?.length) where.push(`${sampleIdColumn} = ANY(${p.add(filter.sampleIds, 'int[]')})`);
  return where;
}

/** Term conditions, reading each term through `column(term)`. */
function termConditions(p: SqlParams, filter: SampleFilter, column: (term: ScalarTermName | 'CORRECT') => string): string[] {
  const where: string[] = [];
  for (const range of filter.terms ?? []) {
    const col = column(range.term);
    if (range.min !== null && range.min !== undefined) where.push(`${col} >= ${p.add(range.min, 'real')}`);
    if (range.max !== null && range.max !== undefined) where.push(`${col} <= ${p.add(range.max, 'real')}`);
  }
  if (filter.correct !== null && filter.correct !== undefined) where.push(`${column('CORRECT')} = ${p.add(filter.correct, 'boolean')}`);
  return where;
}

/** The value columns of a RankedSample row, named as the GraphQL fields are: kNorm and kTrace over the query's subset. */
function valueColumns(hasCross: boolean, subset: string): string {
  const metric = SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => `${termColumn(t.term, subset)} AS "${t.field}"`);
  return [...metric, 'm.correct AS "correct"', hasCross ? 'x.k_cross AS "kCross"' : 'NULL::real AS "kCross"'].join(', ');
}

export interface LongSource {
  /**
   * FROM … JOIN …, with `s` the sample, `m` sample_metric, `k` sample_subset_metric (a named subset),
   * `x` sample_cross_metric (when a target is given).
   */
  from: string;
  where: string[];
  /** The alias.column holding a term (or `correct`). */
  column(term: ScalarTermName | 'CORRECT'): string;
  checkpointColumn: string;
  sampleIdColumn: string;
  /** The term columns of a RankedSample, for SELECT lists. */
  values: string;
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
export function longSource(p: SqlParams, o: LongSourceOptions): LongSource {
  invariant(o.checkpointIds.length > 0, 'a curation query names at least one checkpoint');
  invariant(o.drive !== 'cross' || o.targetKey !== null, 'kCross needs a target');
  const subset = o.subset ?? ALL_PARAMETERS;
  invariant(o.drive !== 'subset' || subset !== ALL_PARAMETERS, "kernel terms over 'all' are in sample_metric");
  const ids = o.checkpointIds.length === 1 ? `= ${p.add(o.checkpointIds[0], 'int')}` : `= ANY(${p.add(o.checkpointIds, 'int[]')})`;
  const keys = {
    target: o.targetKey === null ? null : p.add(o.targetKey, 'text'),
    subset: o.drive !== 'metric' || o.targetKey !== null || subset !== ALL_PARAMETERS ? p.add(subset, 'text') : '',
  };
  const driving = TABLES[o.drive].alias;
  const needed = filterTables(o.filter, subset);
  const tables: TermTable[] = ['metric', ...(subset !== ALL_PARAMETERS ? (['subset'] as const) : []), ...(o.targetKey !== null ? (['cross'] as const) : [])];
  let from = `${TABLES[o.drive].table} ${driving} JOIN sample s ON s.id = ${driving}.sample_id`;
  const where = [`${driving}.checkpoint_id ${ids}`, ...keyConditions(o.drive, driving, keys)];
  for (const table of tables) {
    if (table === o.drive) continue;
    const { table: name, alias } = TABLES[table];
    const on = [`${alias}.checkpoint_id = ${driving}.checkpoint_id`, ...keyConditions(table, alias, keys), `${alias}.sample_id = ${driving}.sample_id`];
    from += ` ${needed.has(table) ? 'JOIN' : 'LEFT JOIN'} ${name} ${alias} ON ${on.join(' AND ')}`;
  }
  const column = (term: ScalarTermName | 'CORRECT') => termColumn(term, subset);
  where.push(...scopeConditions(p, o.filter, `${driving}.sample_id`), ...termConditions(p, o.filter, column));
  return {
    from,
    where,
    column,
    checkpointColumn: `${driving}.checkpoint_id`,
    sampleIdColumn: `${driving}.sample_id`,
    values: valueColumns(o.targetKey !== null, subset),
  };
}

/** Keyset condition after (value, sampleId) in the order (value, sample id) both `direction`. */
export function keysetAfter(p: SqlParams, valueColumn: string, sampleIdColumn: string, direction: Direction, after: { value: number; sampleId: number }, valueType: 'real' | 'float8' = 'real'): string {
  const v = p.add(after.value, valueType);
  const id = p.add(after.sampleId, 'int');
  // The single-column bound is redundant with the row comparison but lets the (checkpoint, term) index seek.
  return direction === 'DESC'
    ? `${valueColumn} <= ${v} AND (${valueColumn}, ${sampleIdColumn}) < (${v}, ${id})`
    : `${valueColumn} >= ${v} AND (${valueColumn}, ${sampleIdColumn}) > (${v}, ${id})`;
}

export function orderBy(valueColumn: string, sampleIdColumn: string, direction: Direction): string {
  return `${valueColumn} ${direction}, ${sampleIdColumn} ${direction}`;
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
  select: string;
  from: string;
  where: string[];
}

/**
 * One row per sample, its term at each checkpoint joined side by side (aliases m0, k0, x0, m1, …),
 * and the score: the term itself at one checkpoint, or the weighted mean Σ w_c · v_c across several,
 * summed in checkpoint order so the same data always gives the same double. Term conditions of
 * the filter must hold at every checkpoint. Inner joins: a sample without the values is not a
 * candidate (and ensureTerms has made sure that no sample in scope lacks them).
 */
export function wideSource(p: SqlParams, o: WideSourceOptions): WideSource {
  invariant(o.checkpointIds.length > 0 && o.checkpointIds.length === o.weights.length, 'one weight per checkpoint');
  const subset = o.subset ?? ALL_PARAMETERS;
  const spec = scalarTerm(o.term);
  const scored = termTable(o.term, subset);
  invariant(scored !== 'cross' || o.targetKey !== null, 'kCross needs a target');
  // The scored term's table first, then whatever the filter reads, each once per checkpoint.
  const tables = [scored, ...[...filterTables(o.filter, subset)].filter((t) => t !== scored)];
  const keys = {
    target: tables.includes('cross') ? p.add(o.targetKey, 'text') : null,
    subset: tables.some((t) => t !== 'metric') ? p.add(subset, 'text') : '',
  };
  const first = `${TABLES[scored].alias}0`;
  const joins: string[] = [];
  const where: string[] = [];
  o.checkpointIds.forEach((checkpointId, i) => {
    const c = p.add(checkpointId, 'int');
    for (const table of tables) {
      const alias = `${TABLES[table].alias}${i}`;
      const conditions = [`${alias}.checkpoint_id = ${c}`, ...keyConditions(table, alias, keys)];
      // The first table is FROM; the others join on its sample id, conditions in their ON clauses.
      if (alias === first) {
        joins.push(`${TABLES[table].table} ${alias}`);
        where.push(...conditions);
      } else {
        joins.push(`JOIN ${TABLES[table].table} ${alias} ON ${[`${alias}.sample_id = ${first}.sample_id`, ...conditions].join(' AND ')}`);
      }
    }
    where.push(...termConditions(p, o.filter, (term) => termColumn(term, subset, String(i))));
  });
  where.push(...scopeConditions(p, o.filter, `${first}.sample_id`));
  const value = (i: number) => `${TABLES[scored].alias}${i}.${spec.column}`;
  const score =
    o.checkpointIds.length === 1
      ? `${value(0)}::float8`
      : o.weights.map((w, i) => `${p.add(w, 'float8')} * ${value(i)}::float8`).join(' + ');
  const srcs = o.checkpointIds.map((_, i) => `${value(i)}_src AS src_${i}`).join(', ');
  const [head, ...rest] = joins;
  return {
    select: `${first}.sample_id, s.label, (${score}) AS score, ${srcs}`,
    from: `${head} JOIN sample s ON s.id = ${first}.sample_id ${rest.join(' ')}`,
    where,
  };
}

export function whereClause(conditions: readonly string[]): string {
  return conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
}

/**
 * The statement of a query: samples with their terms, in (order term, sample id) order, after a
 * keyset position, at most `limit` rows (null: all of them, for a cursor).
 */
export function rankStatement(q: BoundQuery, after: { value: number; sampleId: number } | null, limit: number | null): { text: string; values: unknown[] } {
  const { query, targetKey } = q;
  const p = new SqlParams();
  const source = longSource(p, {
    checkpointIds: [q.checkpointId],
    drive: termTable(query.order.term, querySubset(query)),
    targetKey,
    subset: querySubset(query),
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

export function countStatement(q: BoundQuery): { text: string; values: unknown[] } {
  const { query, targetKey } = q;
  const p = new SqlParams();
  const source = longSource(p, { checkpointIds: [q.checkpointId], drive: termTable(query.order.term, querySubset(query)), targetKey, subset: querySubset(query), filter: query.filter });
  const value = source.column(query.order.term);
  return { text: `SELECT count(*)::int AS n FROM ${source.from} ${whereClause([...source.where, `${value} IS NOT NULL`])}`, values: p.values };
}

/** `WITH pool AS (…)`: every candidate with its label, score and the producer of each checkpoint's value. */
export function poolCte(p: SqlParams, strategy: Strategy): string {
  const source = wideSource(p, {
    checkpointIds: strategy.checkpointIds,
    weights: strategy.weights,
    term: strategy.term,
    targetKey: strategy.targetKey,
    subset: strategy.subset,
    filter: strategy.filter,
  });
  return `pool AS (SELECT ${source.select} FROM ${source.from} ${whereClause(source.where)})`;
}

/**
 * `sel AS (…)`: the selected samples with their rank (1 = best) in the strategy's order: score in
 * `direction`, ties by sample id in the same direction — the same data always gives the same rows.
 */
export function selectionCte(p: SqlParams, strategy: Strategy, cut: Cut): string {
  const d = strategy.direction;
  const order = `score ${d}, sample_id ${d}`;
  let body: string;
  if (cut.kind === 'limit') {
    body = `SELECT sample_id, label, score FROM pool ORDER BY ${order} LIMIT ${p.add(cut.k, 'int')}`;
  } else if (cut.kind === 'threshold') {
    body = `SELECT sample_id, label, score FROM pool WHERE score ${d === 'DESC' ? '>=' : '<='} ${p.add(cut.threshold, 'float8')}`;
  } else {
    body = `SELECT sample_id, label, score FROM (
        SELECT sample_id, label, score, row_number() OVER (PARTITION BY label ORDER BY ${order}) AS class_rank FROM pool
      ) r WHERE class_rank <= (${p.add(cut.quotas, 'int[]')})[label + 1]`;
  }
  return `sel AS (SELECT sample_id, label, score, (row_number() OVER (ORDER BY ${order}))::int AS rank FROM (${body}) t)`;
}
