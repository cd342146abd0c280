import type { Context } from '../context.js';
import { findMissingTerms, missingSampleIds, type MissingTerm } from './coverage.js';
import type { SampleScope } from '../curation/query.js';
import type { RequiredTerm } from '../curation/term-columns.js';
import { ModelUnusableError, TermsMissingError } from '../../platform/errors.js';
import { mayCompute, notComputing } from './compute-policy.js';
import { makeTermsPresent } from './compute-terms.js';

export type { MissingTerm, RequiredTerm, SampleScope };
export { findMissingTerms, missingSampleIds };

/**
 * What making terms available needs: the database, the config (compute backend), a logger, who is
 * asking (the compute policy decides whether they may start computation) and the request's loaders
 * (its inline allowance is kept beside them).
 */
export type TermsContext = Pick<Context, 'db' | 'config' | 'log' | 'caller' | 'loaders' | 'runtimeIfStarted'>;

/**
 * The seam between curation queries and the on-demand compute of missing terms. Every curation
 * query calls this before it filters, ranks, summarises or selects, with the terms it reads and the
 * samples it is about; when it returns, every sample in `scope` has a value of every term at the
 * checkpoint, so a missing value can never be read as zero or silently dropped.
 *
 * The common case costs two row reads (exact counters). When terms are missing they are computed:
 * inline, and written back, when at most TANGENT_INLINE_MAX_SAMPLES samples lack them; otherwise as
 * a durable job, and the query fails with TERMS_PENDING carrying the job's id (src/jobs). A process
 * that runs no compute runtime (a command that only reads) refuses with TERMS_MISSING instead, and
 * a caller who may not start computation (a READER, by default) gets TERMS_PENDING with the missing
 * counts and no job (src/modules/terms/compute-policy.ts).
 *
 * Resolves to true when it computed terms: anything read before it resolved (a page fetched side
 * by side with the check) may lack them and must be read again.
 */
export async function ensureTerms(ctx: TermsContext, checkpointId: number, terms: readonly RequiredTerm[], scope: SampleScope): Promise<boolean> {
  const missing = await findMissingTerms(ctx.db.sql, checkpointId, terms, scope);
  if (missing.length === 0) return false;
  const runtime = ctx.runtimeIfStarted;
  if (!runtime) throw new TermsMissingError(checkpointId, missing);
  if (!mayCompute(ctx.config, ctx.caller)) throw notComputing(ctx, checkpointId, missing);
  try {
    await makeTermsPresent(runtime, checkpointId, missing, scope, ctx);
  } catch (error) {
    // A model that cannot be run leaves the terms missing: say which, and why they cannot be computed.
    if (error instanceof ModelUnusableError) throw new TermsMissingError(checkpointId, missing, { reason: error.message });
    throw error;
  }
  const left = await findMissingTerms(ctx.db.sql, checkpointId, terms, scope);
  if (left.length > 0) throw new TermsMissingError(checkpointId, left);
  return true;
}
