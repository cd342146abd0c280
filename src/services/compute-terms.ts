import DataLoader from 'dataloader';
import type { Context } from '../context.js';
import { missingSampleIds, type MissingTerm } from '../db/curation-coverage.js';
import type { SampleScope } from '../db/curation-sql.js';
import type { SampleMetric } from '../db/generated/client.js';
import { TERMS, type TermName } from '../db/terms.js';
import { BadUserInputError, TermsMissingError, TermsPendingError, invariant, withTimeout } from '../errors.js';
import type { JobScope } from '../jobs/store.js';
import { awaitJob, startJob } from './compute-jobs.js';
import { computeRuntime, type ComputeRuntime } from './compute-runtime.js';

type TermsRequestContext = Pick<Context, 'db' | 'config' | 'loaders'>;

const fillLoaders = new WeakMap<object, DataLoader<string, void>>();

/**
 * The request's loader of missing per-sample terms. Keys are `<checkpointId>:<sampleId>`; the keys
 * one request asks for in one tick (every `sampleTerms` field of the operation) become one compute
 * call per checkpoint. Across requests, ComputeService's single-flight map shares computations.
 * Kept beside the request's other loaders (keyed by them), made on first use.
 */
function fillLoader(ctx: TermsRequestContext, runtime: ComputeRuntime): DataLoader<string, void> {
  let loader = fillLoaders.get(ctx.loaders);
  if (!loader) {
    loader = new DataLoader<string, void>(
      async (keys) => {
        const byCheckpoint = new Map<number, number[]>();
        for (const key of keys) {
          const [checkpointId, sampleId] = key.split(':').map(Number) as [number, number];
          byCheckpoint.set(checkpointId, [...(byCheckpoint.get(checkpointId) ?? []), sampleId]);
        }
        const failures = new Map<number, Error>();
        await Promise.all(
          [...byCheckpoint].map(async ([checkpointId, sampleIds]) => {
            try {
              const ckpt = await runtime.compute.checkpoint(checkpointId);
              await withTimeout(runtime.compute.fillSampleTerms(ckpt, sampleIds), ctx.config.computeTimeoutMs, 'Computing the missing terms');
            } catch (error) {
              failures.set(checkpointId, error as Error);
            }
          }),
        );
        return keys.map((key) => failures.get(Number(key.split(':')[0])));
      },
      // Only missing keys are loaded, and once filled they are read from the database.
      { cache: false },
    );
    fillLoaders.set(ctx.loaders, loader);
  }
  return loader;
}

async function storedRows(ctx: Pick<Context, 'db'>, checkpointId: number, sampleIds: readonly number[]): Promise<Map<number, SampleMetric>> {
  const rows = await ctx.db.prisma.sampleMetric.findMany({ where: { checkpointId, sampleId: { in: [...sampleIds] } } });
  return new Map(rows.map((r) => [r.sampleId, r]));
}

function lacks(row: SampleMetric | undefined, terms: readonly TermName[]): boolean {
  if (!row) return true;
  return terms.some((t) => {
    const field = TERMS.find((spec) => spec.term === t)!.field;
    const value = row[field];
    return value === null || value === undefined;
  });
}

/**
 * Per-sample terms at a checkpoint, one row per id in the order given: what is stored, with the
 * missing values computed now and written back. Up to TANGENT_INLINE_MAX_SAMPLES samples missing a
 * term are computed inline (batched by the request's loader); for more, a job is started and the
 * query fails with TERMS_PENDING and the job's id, unless it finishes within `waitMs`.
 */
export async function sampleTerms(ctx: TermsRequestContext, checkpointId: number, sampleIds: readonly number[], terms: readonly TermName[], waitMs?: number | null): Promise<SampleMetric[]> {
  if (terms.length === 0) throw new BadUserInputError('Name at least one term', 'terms');
  if (sampleIds.length > ctx.config.maxPageSize) {
    throw new BadUserInputError(`At most ${ctx.config.maxPageSize} samples per request; for more, run computeTerms and page through Checkpoint.metrics`, 'sampleIds');
  }
  if (waitMs !== null && waitMs !== undefined && (!Number.isInteger(waitMs) || waitMs < 0)) throw new BadUserInputError('waitMs must be a non-negative number of milliseconds', 'waitMs');
  const unique = [...new Set(sampleIds)];
  let rows = await storedRows(ctx, checkpointId, unique);
  const missing = unique.filter((id) => lacks(rows.get(id), terms));
  if (missing.length > 0) {
    const runtime = computeRuntime(ctx.db);
    const ckpt = await runtime.compute.checkpoint(checkpointId);
    if (missing.length <= ctx.config.compute.inlineMaxSamples) {
      await runtime.compute.samples(ckpt, missing); // BAD_USER_INPUT for an id that is not the dataset's, before any compute
      await Promise.all(missing.map((id) => fillLoader(ctx, runtime).load(`${checkpointId}:${id}`)));
    } else {
      const job = await startJob(runtime, { checkpointId, terms: [...terms], targetKey: null, scope: { sampleIds: missing } });
      const finished = waitMs ? await awaitJob(runtime, job.id, waitMs) : job;
      if (!finished || finished.status === 'QUEUED' || finished.status === 'RUNNING') {
        throw new TermsPendingError(String(job.id), `${missing.length} samples lack terms; job ${job.id} is computing them (follow it with job(id) or the jobProgress subscription)`);
      }
      if (finished.status !== 'COMPLETED') {
        throw new TermsMissingError(checkpointId, [{ name: terms.join(', '), missing: missing.length }]);
      }
    }
    rows = await storedRows(ctx, checkpointId, unique);
  }
  return sampleIds.map((id) => {
    const row = rows.get(id);
    invariant(row && !lacks(row, terms), `sample ${id} still lacks terms at checkpoint ${checkpointId} after computing them`);
    return row;
  });
}

/**
 * Makes `missing` (from findMissingTerms) present for every sample in `scope`: inline when at most
 * TANGENT_INLINE_MAX_SAMPLES samples lack them, otherwise as a durable job, answering TERMS_PENDING
 * with its id. The curation seam (ensureTerms) calls this.
 */
export async function makeTermsPresent(runtime: ComputeRuntime, checkpointId: number, missing: readonly MissingTerm[], scope: SampleScope): Promise<void> {
  const { db, config } = runtime.deps;
  const limit = config.compute.inlineMaxSamples;
  const perSample = [...new Set(missing.filter((m) => m.term.term !== 'K_CROSS').map((m) => m.term.term as TermName))];
  const targets = [...new Set(missing.filter((m) => m.term.term === 'K_CROSS').map((m) => m.term.targetKey!))];
  const lists = await Promise.all(missing.map((m) => missingSampleIds(db.sql, checkpointId, m.term, scope, limit + 1)));
  const selfIds = [...new Set(missing.flatMap((m, i) => (m.term.term === 'K_CROSS' ? [] : lists[i]!)))];
  const inline = selfIds.length <= limit && lists.every((l) => l.length <= limit);
  if (inline) {
    const ckpt = await runtime.compute.checkpoint(checkpointId);
    const work: Promise<void>[] = [];
    if (selfIds.length) work.push(runtime.compute.fillSampleTerms(ckpt, selfIds));
    missing.forEach((m, i) => {
      if (m.term.term === 'K_CROSS') work.push(runtime.compute.fillKCross(ckpt, m.term.targetKey!, lists[i]!));
    });
    await withTimeout(Promise.all(work), config.computeTimeoutMs, 'Computing the missing terms');
    return;
  }
  const jobScope: JobScope = {
    ...(scope.sampleIds?.length ? { sampleIds: [...scope.sampleIds] } : {}),
    ...(scope.splits?.length ? { splits: [...scope.splits] } : {}),
    ...(scope.labels?.length ? { labels: [...scope.labels] } : {}),
  };
  // One job per target set (the per-sample terms ride with the first).
  const jobs = [];
  const keys: (string | null)[] = targets.length ? targets : [null];
  for (const [i, targetKey] of keys.entries()) {
    jobs.push(await startJob(runtime, { checkpointId, terms: i === 0 ? perSample : [], targetKey, scope: jobScope }));
  }
  const first = jobs[0]!;
  throw new TermsPendingError(
    String(first.id),
    `${Math.max(...missing.map((m) => m.missing))} samples lack ${missing.map((m) => m.name).join(', ')} at checkpoint ${checkpointId}; job ${first.id} is computing them`,
  );
}
