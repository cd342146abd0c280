import { invariant } from '../errors.js';
import { SCALAR_TERM_SPECS, scalarTerm, type ScalarTermName } from './curation-terms.js';

/**
 * The SQL behind curation queries (rank, filter, statistics, selection, export). The statements are
 * assembled from fixed fragments: user values only ever travel as parameters (`SqlParams`), and
 * column names only come from the fixed term list (`SCALAR_TERM_SPECS`). Each finished statement
 * carries a `-- named:` comment at its call site.
 */

/** Collects parameters and hands out typed placeholders (`$3::real`). */
export class SqlParams {
  readonly values: unknown[] = [];

  add(value: unknown, type: 'int' | 'int[]' | 'real' | 'float8' | 'float8[]' | 'text' | 'text[]' | 'boolean'): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

export type Direction = 'ASC' | 'DESC';

/** An inclusive range on a term; bounds compare in float32, the precision the values are stored in. */
export interface TermRange {
  term: ScalarTermName;
  min?: number | null;
  max?: number | null;
}

/** Which samples a curation query considers; every condition must hold. */
export interface SampleFilter {
  terms?: readonly TermRange[] | null;
  labels?: readonly number[] | null;
  splits?: readonly string[] | null;
  correct?: boolean | null;
  sampleIds?: readonly number[] | null;
}

/** The part of a filter that does not depend on any term: the samples a query is about. */
export interface SampleScope {
  datasetId: number;
  labels?: readonly number[] | null;
  splits?: readonly string[] | null;
  sampleIds?: readonly number[] | null;
}

export function filterNeedsMetric(filter: SampleFilter): boolean {
  return (filter.correct !== null && filter.correct !== undefined) || (filter.terms ?? []).some((r) => !scalarTerm(r.term).cross);
}

export function filterNeedsCross(filter: SampleFilter): boolean {
  return (filter.terms ?? []).some((r) => scalarTerm(r.term).cross);
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

/** The value columns of a RankedSample row, named as the GraphQL fields are. */
function valueColumns(hasCross: boolean): string {
  const metric = SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => `m.${t.column} AS "${t.field}"`);
  return [...metric, 'm.correct AS "correct"', hasCross ? 'x.k_cross AS "kCross"' : 'NULL::real AS "kCross"'].join(', ');
}

export interface LongSource {
  /** FROM … JOIN …, with `s` the sample, `m` sample_metric, `x` sample_cross_metric (when a target is given). */
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
  /** The table whose index drives the scan: the one holding the order (or statistics) term. */
  drive: 'metric' | 'cross';
  targetKey: string | null;
  filter: SampleFilter;
}

/**
 * One row per (checkpoint, sample) over the given checkpoints: the driving table, the sample, and
 * the other term table joined (inner when the filter needs its values, left when they are only shown).
 * With one checkpoint the condition is an equality, so an index on (checkpoint_id, term) also orders.
 */
export function longSource(p: SqlParams, o: LongSourceOptions): LongSource {
  invariant(o.checkpointIds.length > 0, 'a curation query names at least one checkpoint');
  invariant(o.drive === 'metric' || o.targetKey !== null, 'kCross needs a target');
  const ids = o.checkpointIds.length === 1 ? `= ${p.add(o.checkpointIds[0], 'int')}` : `= ANY(${p.add(o.checkpointIds, 'int[]')})`;
  const key = o.targetKey === null ? null : p.add(o.targetKey, 'text');
  const where: string[] = [];
  let from: string;
  if (o.drive === 'metric') {
    from = 'sample_metric m JOIN sample s ON s.id = m.sample_id';
    where.push(`m.checkpoint_id ${ids}`);
    if (key !== null) {
      const join = filterNeedsCross(o.filter) ? 'JOIN' : 'LEFT JOIN';
      from += ` ${join} sample_cross_metric x ON x.checkpoint_id = m.checkpoint_id AND x.target_key = ${key} AND x.sample_id = m.sample_id`;
    }
  } else {
    from = 'sample_cross_metric x JOIN sample s ON s.id = x.sample_id';
    where.push(`x.checkpoint_id ${ids}`, `x.target_key = ${key}`);
    const join = filterNeedsMetric(o.filter) ? 'JOIN' : 'LEFT JOIN';
    from += ` ${join} sample_metric m ON m.checkpoint_id = x.checkpoint_id AND m.sample_id = x.sample_id`;
  }
  const driving = o.drive === 'metric' ? 'm' : 'x';
  const column = (term: ScalarTermName | 'CORRECT') => (term === 'CORRECT' ? 'm.correct' : scalarTerm(term).cross ? 'x.k_cross' : `m.${scalarTerm(term).column}`);
  where.push(...scopeConditions(p, o.filter, `${driving}.sample_id`), ...termConditions(p, o.filter, column));
  return {
    from,
    where,
    column,
    checkpointColumn: `${driving}.checkpoint_id`,
    sampleIdColumn: `${driving}.sample_id`,
    values: valueColumns(key !== null),
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
  filter: SampleFilter;
}

export interface WideSource {
  /** SELECT list items: sample_id, label, score, src_0 … src_{K-1}. */
  select: string;
  from: string;
  where: string[];
}

/**
 * One row per sample, its term at each checkpoint joined side by side (aliases m0, x0, m1, …), and
 * the score: the term itself at one checkpoint, or the weighted mean Σ w_c · v_c across several,
 * summed in checkpoint order so the same data always gives the same double. Term conditions of
 * the filter must hold at every checkpoint. Inner joins: a sample without the values is not a
 * candidate (and ensureTerms has made sure that no sample in scope lacks them).
 */
export function wideSource(p: SqlParams, o: WideSourceOptions): WideSource {
  invariant(o.checkpointIds.length > 0 && o.checkpointIds.length === o.weights.length, 'one weight per checkpoint');
  const spec = scalarTerm(o.term);
  invariant(!spec.cross || o.targetKey !== null, 'kCross needs a target');
  const needMetric = !spec.cross || filterNeedsMetric(o.filter);
  const needCross = spec.cross || filterNeedsCross(o.filter);
  const key = needCross ? p.add(o.targetKey, 'text') : null;
  const first = spec.cross ? 'x0' : 'm0';
  const joins: string[] = [];
  const where: string[] = [];
  o.checkpointIds.forEach((checkpointId, i) => {
    const c = p.add(checkpointId, 'int');
    const on = (alias: string) => (alias === first ? null : `${alias}.sample_id = ${first}.sample_id`);
    if (spec.cross) {
      joins.push(tableJoin(`sample_cross_metric x${i}`, `x${i}`, first, [`x${i}.checkpoint_id = ${c}`, `x${i}.target_key = ${key}`], on(`x${i}`)));
      if (needMetric) joins.push(tableJoin(`sample_metric m${i}`, `m${i}`, first, [`m${i}.checkpoint_id = ${c}`], on(`m${i}`)));
    } else {
      joins.push(tableJoin(`sample_metric m${i}`, `m${i}`, first, [`m${i}.checkpoint_id = ${c}`], on(`m${i}`)));
      if (needCross) joins.push(tableJoin(`sample_cross_metric x${i}`, `x${i}`, first, [`x${i}.checkpoint_id = ${c}`, `x${i}.target_key = ${key}`], on(`x${i}`)));
    }
    const column = (term: ScalarTermName | 'CORRECT') => (term === 'CORRECT' ? `m${i}.correct` : scalarTerm(term).cross ? `x${i}.k_cross` : `m${i}.${scalarTerm(term).column}`);
    where.push(...termConditions(p, o.filter, column));
  });
  where.push(...scopeConditions(p, o.filter, `${first}.sample_id`));
  const value = (i: number) => (spec.cross ? `x${i}.k_cross` : `m${i}.${spec.column}`);
  const src = (i: number) => (spec.cross ? `x${i}.k_cross_src` : `m${i}.${spec.column}_src`);
  const score =
    o.checkpointIds.length === 1
      ? `${value(0)}::float8`
      : o.weights.map((w, i) => `${p.add(w, 'float8')} * ${value(i)}::float8`).join(' + ');
  const srcs = o.checkpointIds.map((_, i) => `${src(i)} AS src_${i}`).join(', ');
  // The first table is FROM; the others join on its sample id, conditions in their ON clauses.
  const [head, ...rest] = joins;
  return {
    select: `${first}.sample_id, s.label, (${score}) AS score, ${srcs}`,
    from: `${head} JOIN sample s ON s.id = ${first}.sample_id ${rest.join(' ')}`,
    where,
  };

  function tableJoin(table: string, alias: string, firstAlias: string, conditions: string[], joinOn: string | null): string {
    if (alias === firstAlias) {
      where.push(...conditions);
      return table;
    }
    return `JOIN ${table} ON ${[joinOn!, ...conditions].join(' AND ')}`;
  }
}

export function whereClause(conditions: readonly string[]): string {
  return conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';
}
