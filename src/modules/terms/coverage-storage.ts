import { coverageKey, describeTerm, scalarTerm, subsetOf, type RequiredTerm } from '../curation/term-columns.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import { SqlParams } from '../../platform/db/sql.js';
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
  const p = new SqlParams();
  const { from, where, missing } = missingSource(p, checkpointId, terms, scope);
  // named: coverage.missingInScope
  const [row] = await sql.query<Record<string, number | string>>(
    `SELECT ${missing.map((cond, i) => `count(*) FILTER (WHERE ${cond})::int AS t${i}`).join(', ')} FROM ${from} WHERE ${where.join(' AND ')}`,
    p.values,
  );
  return missing.map((_, i) => Number(row?.[`t${i}`] ?? 0));
}

/** The samples in scope, left-joined to where each term would be; `missing[i]` is true when term i is absent. */
function missingSource(p: SqlParams, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope) {
  const c = p.add(checkpointId, 'int');
  let from = `sample s LEFT JOIN sample_metric m ON m.checkpoint_id = ${c} AND m.sample_id = s.id`;
  const missing = terms.map((t, i) => {
    if (t.term === 'CORRECT') return 'm.correct IS NULL';
    const spec = scalarTerm(t.term);
    const subset = subsetOf(t);
    if (spec.cross) {
      from += ` LEFT JOIN sample_cross_metric x${i} ON x${i}.checkpoint_id = ${c} AND x${i}.target_key = ${p.add(t.targetKey, 'text')}
        AND x${i}.subset = ${p.add(subset, 'text')} AND x${i}.sample_id = s.id`;
      return `x${i}.sample_id IS NULL`;
    }
    if (subset === ALL_PARAMETERS) return `m.${spec.column} IS NULL`;
    from += ` LEFT JOIN sample_subset_metric k${i} ON k${i}.checkpoint_id = ${c} AND k${i}.subset = ${p.add(subset, 'text')} AND k${i}.sample_id = s.id`;
    return `k${i}.${spec.column} IS NULL`;
  });
  const where = [`s.dataset_id = ${p.add(scope.datasetId, 'int')}`];
  if (scope.labels?.length) where.push(`s.label = ANY(${p.add(scope.labels, 'int[]')})`);
  if (scope.splits?.length) where.push(`s.split = ANY(${p.add(scope.splits, 'text[]')})`);
  if (scope.sampleIds?.length) where.push(`s.id = ANY(${p.add(scope.sampleIds, 'int[]')})`);
  return { from, where, missing };
}

/**
 * The ids of samples in scope that lack `term` at a checkpoint, in id order, at most `limit`: what
 * the on-demand compute of missing terms works through.
 */
export async function missingSampleIds(sql: Sql, checkpointId: number, term: RequiredTerm, scope: SampleScope, limit: number, afterSampleId = 0): Promise<number[]> {
  const p = new SqlParams();
  const { from, where, missing } = missingSource(p, checkpointId, [term], scope);
  // named: coverage.missingSampleIds
  const rows = await sql.query<{ id: number }>(
    `SELECT s.id FROM ${from} WHERE ${[...where, missing[0]!, `s.id > ${p.add(afterSampleId, 'int')}`].join(' AND ')} ORDER BY s.id LIMIT ${p.add(limit, 'int')}`,
    p.values,
  );
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
