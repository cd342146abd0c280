import type { Sql } from '../../platform/db/sql.js';
import type { SampleScope } from '../curation/query.js';
import type { RequiredTerm } from '../curation/term-columns.js';
import * as coverage from './coverage-storage.js';

export type { MissingTerm } from './coverage-storage.js';

/**
 * Which of `terms` some sample in `scope` lacks at a checkpoint, and how many samples lack each
 * (src/modules/terms/coverage-storage.ts): two counter rows when nothing is missing. `sql` is the
 * database, or a transaction that must see its own writes.
 */
export function findMissingTerms(sql: Sql, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): Promise<coverage.MissingTerm[]> {
  return coverage.findMissingTerms(sql, checkpointId, terms, scope);
}

/** The ids of samples in scope that lack `term` at a checkpoint, in id order, at most `limit`. */
export function missingSampleIds(sql: Sql, checkpointId: number, term: RequiredTerm, scope: SampleScope, limit: number, afterSampleId = 0): Promise<number[]> {
  return coverage.missingSampleIds(sql, checkpointId, term, scope, limit, afterSampleId);
}
