import type { Context } from '../context.js';
import type { TermName } from '../../platform/values/term.js';
import type { ParameterSubset } from '../../platform/values/parameter-subset.js';
import { checkSubset } from '../terms/subsets.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { publishProgress, waitForJob } from './progress.js';
import { CHUNK_KIND, chunkQueueId } from './queue.js';
import { cancelJobRow, countJobs, firstForeignSample, insertJob, listJobRows, loadJob, reopenJob, type JobFilter, type JobRow, type JobScope, type JobStatus } from './storage.js';

export { isActive, type JobRow, type JobScope, type JobStatus } from './storage.js';
import { pendingChunkIds } from './queue-worker.js';
import { afterId, pageSize, toConnection } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { admitNewJob, type ComputeCaller } from '../terms/compute-policy.js';
import type { ComputeRuntime } from './runtime.js';

/** What `computeTerms` asks for. */
export interface ComputeTermsRequest {
  checkpointId: number;
  /** Per-sample terms that must be present when the job is done. */
  terms: TermName[];
  /** kCross against this target set too (`split:…` or `selection:…`). */
  targetKey: string | null;
  /** The parameter subset the kernel terms are over: 'all' or a name of the model's (checkSubset, once per request path). */
  subset: ParameterSubset;
  scope: JobScope;
}

/** The longest a query or a command waits for a job (`waitMs` is clamped to it). */
export const MAX_WAIT_MS = 10 * 60 * 1000;

/**
 * Starts a durable job that makes the terms present for every sample in scope, or returns the job
 * already under way for the same work. The job row and its chunks' queue jobs are written in one
 * transaction: a job exists with all of its chunks queued, or not at all. A new job is admitted by
 * the compute policy (`by`: who asks) in that transaction: refused, it leaves nothing behind;
 * joining a job already under way costs nothing. The subset is checked against the model here
 * (checkSubset, BAD_USER_INPUT naming `subsetField`) for computeTerms; a caller whose request path
 * has checked it already (sampleTerms, ensureTerms) passes null.
 */
export async function startJob(runtime: ComputeRuntime, request: ComputeTermsRequest, by: ComputeCaller, subsetField: string | null): Promise<JobRow> {
  const { db, pubsub, config } = runtime.deps;
  if (request.terms.length === 0 && request.targetKey === null) throw new BadUserInputError('Name at least one term, or a target set for kCross', 'terms');
  const ckpt = await runtime.compute.checkpoint(request.checkpointId);
  if (subsetField !== null) await checkSubset({ db, runtimeIfStarted: runtime }, ckpt.id, request.subset, subsetField);
  if (request.scope.sampleIds?.length) await checkSamples(runtime, ckpt.datasetId, request.scope.sampleIds);
  const spec = {
    checkpointId: ckpt.id,
    datasetId: ckpt.datasetId,
    terms: request.terms,
    targetKey: request.targetKey,
    subset: request.subset,
    scope: request.scope,
    requestedByKeyId: by.caller.key?.id ?? null,
  };
  let refund: (() => Promise<void>) | null = null;
  const made = await db.transaction(async (tx) => {
    const job = await insertJob(tx, spec, config.compute.chunkSize);
    if (job.created) {
      refund = await admitNewJob(by, tx, job.totalSamples);
      const attempt = 1;
      const chunks = Array.from({ length: job.totalChunks }, (_, chunk) => ({
        id: chunkQueueId({ id: job.id, createdAt: job.createdAt }, attempt, chunk),
        data: { jobId: job.id, chunk, attempt },
      }));
      await runtime.queue.send(CHUNK_KIND, tx, chunks);
    }
    return job;
  }).catch(async (error: unknown) => {
    // Charged for a job whose transaction then failed: give the samples back.
    await (refund as (() => Promise<void>) | null)?.();
    throw error;
  });
  if (made.created) {
    runtime.queue.notify(CHUNK_KIND);
    await publishProgress(pubsub, made.id);
  }
  return (await loadJob(db, made.id))!;
}

/** BAD_USER_INPUT naming the first id that is not a sample of the dataset. */
async function checkSamples(runtime: ComputeRuntime, datasetId: number, ids: readonly number[]): Promise<void> {
  const bad = await firstForeignSample(runtime.deps.db.sql, datasetId, ids);
  if (bad !== null) throw new BadUserInputError(`Sample ${bad} is not a sample of the checkpoint's dataset`, 'sampleIds');
}

export async function getJob(ctx: Pick<Context, 'db'>, id: number): Promise<JobRow | null> {
  return loadJob(ctx.db, id);
}

/** Cancels a job that is QUEUED or RUNNING (chunks already committed stay); a finished job is returned as it is. */
export async function cancelJob(runtime: ComputeRuntime, id: number): Promise<JobRow> {
  const { db, pubsub } = runtime.deps;
  const job = await loadJob(db, id);
  if (!job) throw new NotFoundError('Job', id);
  if (await cancelJobRow(db.sql, id)) {
    await runtime.queue.cancel(CHUNK_KIND, await pendingChunkIds(db, job));
    await publishProgress(pubsub, id);
  }
  return (await loadJob(db, id))!;
}

/**
 * Runs a FAILED or CANCELLED job again from where it stopped: its committed chunks stay done, the
 * others are queued again (each with the chunk retry limit afresh). Any other job is returned as it is.
 */
export async function retryJob(runtime: ComputeRuntime, id: number): Promise<JobRow> {
  const { db, pubsub } = runtime.deps;
  const job = await loadJob(db, id);
  if (!job) throw new NotFoundError('Job', id);
  const reopened = await db.transaction(async (tx) => {
    const r = await reopenJob(tx, id);
    if (r) await runtime.queue.send(CHUNK_KIND, tx, r.chunks.map((chunk) => ({ id: chunkQueueId(job, r.attempt, chunk), data: { jobId: id, chunk, attempt: r.attempt } })));
    return r;
  });
  if (reopened) {
    runtime.queue.notify(CHUNK_KIND);
    await publishProgress(pubsub, id);
  }
  return (await loadJob(db, id))!;
}

/** Waits until the job is no longer QUEUED or RUNNING, at most `ms` (clamped to MAX_WAIT_MS). */
export async function awaitJob(runtime: ComputeRuntime, id: number, ms: number): Promise<JobRow | null> {
  return waitForJob(runtime.deps.db, runtime.deps.pubsub, id, Math.min(Math.max(0, ms), MAX_WAIT_MS));
}

/** Jobs, newest first, optionally of one checkpoint and in one status. */
export async function listJobs(
  ctx: Pick<Context, 'db' | 'config'>,
  args: { first?: number | null; after?: string | null; checkpointId?: number; status?: JobStatus | null },
): Promise<ConnectionRow<JobRow>> {
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const after = afterId('jobs', args.after);
  const filter: JobFilter = {
    ...(args.checkpointId !== undefined ? { checkpointId: args.checkpointId } : {}),
    ...(args.status ? { status: args.status } : {}),
  };
  const rows = limit === 0 ? [] : await listJobRows(ctx.db, filter, after, limit + 1);
  return toConnection('jobs', rows, limit, (row) => [row.id], () => countJobs(ctx.db, filter));
}
