import type { Context } from '../context.js';
import { findMissingTerms, missingSampleIds, type MissingTerm } from '../db/curation-coverage.js';
import type { SampleScope } from '../db/curation-sql.js';
import type { RequiredTerm } from '../db/curation-terms.js';
import { TermsMissingError } from '../errors.js';

export type { MissingTerm, RequiredTerm, SampleScope };
export { findMissingTerms, missingSampleIds };

/** What making terms available needs: the database, the config (compute backend) and a logger. */
export type TermsContext = Pick<Context, 'db' | 'config' | 'log'>;

/**
 * The seam between curation queries and the on-demand compute of missing terms. Every curation
 * query calls this before it filters, ranks, summarises or selects, with the terms it reads and the
 * samples it is about; when it returns, every sample in `scope` has a value of every term at the
 * checkpoint, so a missing value can never be read as zero or silently dropped.
 *
 * Today it only checks (from exact counters, so the common case costs two row reads) and refuses
 * with TERMS_MISSING naming how many samples lack which term. The on-demand compute (issue 4)
 * replaces this body with "compute them: inline for small sets, a durable job for large ones
 * (throwing TermsPendingError with the job id)"; `findMissingTerms` and `missingSampleIds` are the
 * pieces it needs, and callers do not change.
 */
export async function ensureTerms(ctx: TermsContext, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): Promise<void> {
  const missing = await findMissingTerms(ctx.db.sql, checkpointId, terms, scope);
  if (missing.length > 0) throw new TermsMissingError(checkpointId, missing);
}
