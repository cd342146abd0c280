import { coverageKey, describeTerm, scalarTerm, subsetOf, type RequiredTerm } from '../curation/term-columns.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import { and, join, param, raw, sql as statement, type Statement } from '../../platform/db/statement.js';
import type { SampleScope } from '../curation/query.js';
import type { Sql } from '../../platform/db/sql.js';

export interface MissingTerm {
  term: RequiredTerm;
  /** e.g. kNorm or kCross(split:validation). */
  name: string;
  /** Samples in scope without a value. */
  missing: number;
}

function hasScope(scope: SampleScope): boolean {
  return Boolean(scope.labels?.length || scope.splits?.length || scope.sampleIds?.length);
}

function uniqueTerms(terms: readonly RequiredTerm[]): RequiredTerm[] {
  const seen = new Map<string, RequiredTerm>();
  for (const t of terms) seen.set(coverageKey(t), t);
  return [...seen.values()];
}

/**
 * Which of `terms` some sample in `scope` lacks at a checkpoint, and how many samples lack each.
 * First from the coverage counters (metric_coverage, dataset_size: two rows, kept exact by
 * triggers): when every sample of the dataset has the term, every scope has it. Only a term that
 * the counters say is incomplete is counted in the scope itself, with one scan.
 */
export async function findMissingTerms(sql: Sql, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): Promise<MissingTerm[]> {
  const wanted = uniqueTerms(terms);
  if (wanted.length === 0) return [];
  const keys = wanted.map(coverageKey);
  // named: coverage.summary
  const [summary] = await sql.query<{ samples: number | string; present: Record<string, number | string> | null }>(
    `SELECT coalesce((SELECT samples FROM dataset_size WHERE dataset_id = $1), 0)::int AS samples,
            (SELECT json_object_agg(term, present) FROM metric_coverage WHERE checkpoint_id = $2 AND term = ANY($3::text[])) AS present`,
    [scope.datasetId, checkpointId, keys],
  );
  const samples = Number(summary?.samples ?? 0);
  const present = summary?.present ?? {};
  const incomplete = wanted.filter((t) => Number(present[coverageKey(t)] ?? 0) < samples);
  if (incomplete.length === 0) return [];
  if (!hasScope(scope)) {
    return incomplete.map((t) => ({ term: t, name: describeTerm(t), missing: samples - Number(present[coverageKey(t)] ?? 0) }));
  }
  const counts = await countMissingInScope(sql, checkpointId, incomplete, scope);
  return incomplete.map((t, i) => ({ term: t, name: describeTerm(t), missing: counts[i]! })).filter((m) => m.missing > 0);
}

/** One scan of the scope counting, per term, the samples with no value. */
async function countMissingInScope(sql: Sql, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): Promise<number[]> {
  const { from, where, missing } = missingSource(checkpointId, terms, scope);
  const counts = join(missing.map((cond, i) => statement`count(*) FILTER (WHERE ${cond})::int AS ${raw(`t${i}`)}`), ', ');
  const query = statement`SELECT ${counts} FROM ${from} WHERE ${and(where)}`;
  // named: coverage.missingInScope
  const [row] = await sql.query<Record<string, number | string>>(query.text, query.values);
  return missing.map((_, i) => Number(row?.[`t${i}`] ?? 0));
}

/**
 * The samples in scope, left-joined to where each term would be; `missing[i]` is true when term i is
 * absent. Aliases and columns are fixed text (the term list); every value is a bound parameter.
 */
function missingSource(checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): { from: Statement; where: Statement[]; missing: Statement[] } {
  const c = () => param(checkpointId, 'int');
  const joins: Statement[] = [statement`sample s LEFT JOIN sample_metric m ON m.checkpoint_id = ${c()} AND m.sample_id = s.id`];
  const missing = terms.map((t, i) => {
    if (t.term === 'CORRECT') return raw('m.correct IS NULL');
    const spec = scalarTerm(t.term);
    const subset = subsetOf(t);
    if (spec.cross) {
      const x = raw(`x${i}`);
      joins.push(statement`LEFT JOIN sample_cross_metric ${x} ON ${x}.checkpoint_id = ${c()} AND ${x}.target_key = ${param(t.targetKey, 'text')}
        AND ${x}.subset = ${param(subset, 'text')} AND ${x}.sample_id = s.id`);
      return raw(`x${i}.sample_id IS NULL`);
    }
    if (subset === ALL_PARAMETERS) return raw(`m.${spec.column} IS NULL`);
    const k = raw(`k${i}`);
    joins.push(statement`LEFT JOIN sample_subset_metric ${k} ON ${k}.checkpoint_id = ${c()} AND ${k}.subset = ${param(subset, 'text')} AND ${k}.sample_id = s.id`);
    return raw(`k${i}.${spec.column} IS NULL`);
  });
  const where = [statement`s.dataset_id = ${param(scope.datasetId, 'int')}`];
  if (scope.labels?.length) where.push(statement`s.label = ANY(${param(scope.labels, 'int[]')})`);
  if (scope.splits?.length) where.push(statement`s.split = ANY(${param(scope.splits, 'text[]')})`);
  if (scope.sampleIds?.length) where.push(statement`s.id = ANY(${param(scope.sampleIds, 'int[]')})`);
  return { from: join(joins, ' '), where, missing };
}

/**
 * The ids of samples in scope that lack `term` at a checkpoint, in id order, at most `limit`: what
 * the on-demand compute of missing terms works through.
 */
export async function missingSampleIds(sql: Sql, checkpointId: number, term: RequiredTerm, scope: SampleScope, limit: number, afterSampleId = 0): Promise<number[]> {
  const { from, where, missing } = missingSource(checkpointId, [term], scope);
  const query = statement`SELECT s.id FROM ${from} WHERE ${and([...where, missing[0]!, statement`s.id > ${param(afterSampleId, 'int')}`])}
    ORDER BY s.id LIMIT ${param(limit, 'int')}`;
  // named: coverage.missingSampleIds
  const rows = await sql.query<{ id: number }>(query.text, query.values);
  return rows.map((r) => Number(r.id));
}

/**
 * Whether any value over a named parameter subset is stored at a checkpoint (kNorm, kTrace or kCross
 * over it): one read of the coverage counters.
 */
export async function subsetHasStoredValues(sql: Sql, checkpointId: number, subset: string): Promise<boolean> {
  // named: subsets.stored
  const [stored] = await sql.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM metric_coverage WHERE checkpoint_id = $1 AND present > 0
                    AND (term = ANY($2::text[]) OR starts_with(term, $3))) AS found`,
    [checkpointId, [`k_norm@${subset}`, `k_trace@${subset}`], `k_cross@${subset}:`],
  );
  return Boolean(stored?.found);
}
