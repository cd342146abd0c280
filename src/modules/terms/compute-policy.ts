import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import { roleAllows, type Caller } from '../../platform/auth/roles.js';
import type { Config } from '../../platform/config.js';
import type { Context } from '../context.js';
import type { Sql } from '../../platform/db/sql.js';
import { ComputeBudgetExceededError, ComputeForbiddenError, TermsPendingError } from '../../platform/errors.js';
import { secondsUntil } from '../../platform/http/rate-limit.js';
import { ComputeBudgets } from './budgets.js';
import type { TermsLoaders } from './loaders.js';
import { countActiveJobsOfKey } from './storage.js';

/**
 * Who may spend the server's compute, and how much: the one place that decides it. Every path that
 * starts computation (the curation seam ensureTerms, sampleTerms, firstOrder, computeTerms jobs,
 * and through them rankings, statistics, selections, kCross and exports) calls in here with the
 * caller before any work begins.
 *
 * - **Permission.** WRITER and ADMIN keys may start computation; READER keys only when the operator
 *   sets TANGENT_READER_COMPUTE=on. A READER over missing terms gets TERMS_PENDING with the missing
 *   counts and no job; where there is nothing to wait for (firstOrder) it gets COMPUTE_FORBIDDEN.
 * - **Budget, per key.** Samples computed per hour (inline, and the samples a new job covers),
 *   counted in the same shared store as the rate limits, so every replica spends one budget; and
 *   jobs QUEUED or RUNNING at once, counted from the job rows themselves. Over either:
 *   COMPUTE_BUDGET_EXCEEDED. Callers without a key (in-process work, a server that runs open on
 *   loopback) are the operator, and have no budget.
 * - **Inline work per request.** TANGENT_INLINE_MAX_SAMPLES bounds the samples one request computes
 *   inline, all of its fields together; past it the request's further work goes to jobs.
 */
export type ComputeCaller = Pick<Context, 'db' | 'config' | 'caller' | 'runtimeIfStarted'> & { loaders?: { terms: TermsLoaders } };

/** Whether this caller may start computation at all. */
export function mayCompute(config: Config, caller: Caller): boolean {
  return roleAllows(caller.role, 'WRITER') || (config.compute.readerCompute && caller.role === 'READER');
}

/** COMPUTE_FORBIDDEN unless the caller may compute; `what` names the work (`firstOrder`). */
export function assertMayCompute(ctx: ComputeCaller, what: string): void {
  if (!mayCompute(ctx.config, ctx.caller)) throw new ComputeForbiddenError(ctx.caller.role, what);
}

/**
 * TERMS_PENDING for a caller who may not compute: what is missing, and that nothing is computing it
 * (no jobId: there is no job to follow).
 */
export function notComputing(ctx: ComputeCaller, checkpointId: number, missing: readonly { name: string; missing: number }[]): TermsPendingError {
  const what = missing.map((m) => `${m.missing} sample${m.missing === 1 ? ' lacks' : 's lack'} ${m.name}`).join(', ');
  return new TermsPendingError(
    null,
    `${what} at checkpoint ${checkpointId}; a ${ctx.caller.role} key does not start computation, so nothing is computing them: a WRITER key can (computeTerms)`,
    {
      checkpointId: String(checkpointId),
      missing: missing.map((m) => ({ term: m.name, count: m.missing })),
      reason: 'COMPUTE_FORBIDDEN',
    },
  );
}

/**
 * Reserves `samples` of the request's inline allowance (TANGENT_INLINE_MAX_SAMPLES for the whole
 * request); false when they do not fit, and the caller starts a job instead. A context without
 * per-request loaders (none in practice) gets the allowance per call.
 */
export function reserveInline(ctx: ComputeCaller, samples: number): boolean {
  const limit = ctx.config.compute.inlineMaxSamples;
  const request = ctx.loaders?.terms ?? null;
  const used = request?.inlineUsed ?? 0;
  if (used + samples > limit) return false;
  if (request) request.inlineUsed = used + samples;
  return true;
}

/**
 * The samples-per-hour limiter: the one this process's compute runtime holds (every request it
 * serves charges it; on the embedded database it counts in memory). A process without a compute
 * runtime computes nothing, so it only reads the budget (`viewer.computeBudget`), through a limiter
 * over the same shared store.
 */
function samplesLimiter(ctx: ComputeCaller): RateLimiterAbstract | null {
  const runtime = ctx.runtimeIfStarted;
  return (runtime?.compute.budgets ?? new ComputeBudgets(ctx.db)).samplesLimiter(ctx.config);
}

/**
 * Charges `samples` to the caller's hourly budget, or refuses (COMPUTE_BUDGET_EXCEEDED) without
 * charging anything. Resolves to a refund, for work that then did not start.
 */
export async function chargeSamples(ctx: ComputeCaller, samples: number): Promise<() => Promise<void>> {
  const none = async () => undefined;
  const key = ctx.caller.key;
  const limiter = samplesLimiter(ctx);
  if (!key || !limiter || samples <= 0) return none;
  const res = await limiter.get(`key:${key.id}`);
  const used = res?.consumedPoints ?? 0;
  const limit = ctx.config.compute.samplesPerHourPerKey;
  if (used + samples > limit) {
    const retryAfterSeconds = res ? secondsUntil(res.msBeforeNext) : 3600;
    throw new ComputeBudgetExceededError(
      `this key may have ${limit} samples computed per hour; ${used} are used and this needs ${samples} more; retry in ${retryAfterSeconds} s, or ask for fewer samples`,
      { limit: 'samplesPerHour', samplesPerHour: limit, samplesUsed: used, requested: samples, retryAfterSeconds },
    );
  }
  // Between the look and the charge another replica may have spent some: the charge is what counts.
  await limiter.penalty(`key:${key.id}`, samples);
  return async () => {
    await limiter.reward(`key:${key.id}`, samples).catch(() => undefined);
  };
}

/**
 * Called in the transaction that inserts a new job, after the insert (so `tx` sees it): refuses
 * when the key now has more jobs under way than TANGENT_COMPUTE_JOBS_PER_KEY (the transaction rolls
 * back, and no job was made), then charges the job's samples. Resolves to the charge's refund.
 */
export async function admitNewJob(ctx: ComputeCaller, tx: Sql, samples: number): Promise<() => Promise<void>> {
  assertMayCompute(ctx, 'Computing terms');
  const key = ctx.caller.key;
  const limit = ctx.config.compute.jobsPerKey;
  if (key && limit > 0) {
    const running = await countActiveJobsOfKey(tx, key.id);
    if (running > limit) {
      throw new ComputeBudgetExceededError(
        `this key may have ${limit} compute jobs queued or running at once, and has ${running - 1}; wait for one to finish (job(id), jobProgress) or cancel one`,
        { limit: 'concurrentJobs', concurrentJobs: limit, runningJobs: running - 1 },
      );
    }
  }
  return chargeSamples(ctx, samples);
}

/** What `viewer.computeBudget` shows: the key's limits and use; null for a caller without a key (no budget). */
export interface ComputeBudget {
  samplesPerHour: number | null;
  samplesUsed: number;
  resetsInSeconds: number | null;
  concurrentJobs: number | null;
  runningJobs: number;
}

export async function computeBudget(ctx: ComputeCaller): Promise<ComputeBudget | null> {
  const key = ctx.caller.key;
  if (!key) return null;
  const limiter = samplesLimiter(ctx);
  const [res, running] = await Promise.all([limiter ? limiter.get(`key:${key.id}`) : null, countActiveJobsOfKey(ctx.db.sql, key.id)]);
  return {
    samplesPerHour: limiter ? ctx.config.compute.samplesPerHourPerKey : null,
    samplesUsed: res?.consumedPoints ?? 0,
    resetsInSeconds: res ? secondsUntil(res.msBeforeNext) : null,
    concurrentJobs: ctx.config.compute.jobsPerKey > 0 ? ctx.config.compute.jobsPerKey : null,
    runningJobs: running,
  };
}
