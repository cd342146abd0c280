import DataLoader from 'dataloader';
import type { Context } from '../context.js';
import { missingSampleIds, type MissingTerm } from './coverage.js';
import type { SampleScope } from '../curation/query.js';
import type { SampleMetric } from '../../platform/db/generated/client.js';
import { TERMS, type TermName } from '../../platform/values/term.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { checkSubset } from './subsets.js';
import { BadUserInputError, TermsMissingError, TermsPendingError, invariant, withTimeout } from '../../platform/errors.js';
import type { SampleMetricRow } from '../../platform/graphql/rows.js';
import { awaitJob, startJob, type JobScope } from '../jobs/service.js';
import { sampleMetricRows, sampleSubsetMetricRows } from './storage.js';
import { chargeSamples, mayCompute, notComputing, reserveInline, type ComputeCaller } from './compute-policy.js';
import type { ComputeRuntime } from '../jobs/runtime.js';

type TermsRequestContext = Pick<Context, 'db' | 'config' | 'loaders' | 'caller' | 'runtime' | 'runtimeIfStarted'>;

/**
 * The request's loader of missing per-sample terms. Keys are `<checkpointId>:<subset>:<sampleId>`;
 * the keys one request asks for in one tick (every `sampleTerms` field of the operation) become one
 * compute call per checkpoint and subset. Across requests, ComputeService's single-flight map shares
 * computations. Kept in the request's terms loaders (src/modules/terms/loaders.ts), made on first use.
 */
function fillLoader(ctx: TermsRequestContext, runtime: ComputeRuntime): DataLoader<string, void> {
  return ctx.loaders.terms.fillLoader(
    () =>
      new DataLoader<string, void>(
        async (keys) => {
          const groups = new Map<string, { checkpointId: number; subset: ParameterSubset; sampleIds: number[] }>();
          for (const key of keys) {
            const [checkpointId, subset, sampleId] = key.split(':') as [string, ParameterSubset, string];
            const group = groups.get(`${checkpointId}:${subset}`) ?? { checkpointId: Number(checkpointId), subset, sampleIds: [] };
            group.sampleIds.push(Number(sampleId));
            groups.set(`${checkpointId}:${subset}`, group);
          }
          const failures = new Map<string, Error>();
          await Promise.all(
            [...groups].map(async ([group, { checkpointId, subset, sampleIds }]) => {
              try {
                const ckpt = await runtime.compute.checkpoint(checkpointId);
                await withTimeout(runtime.compute.fillSampleTerms(ckpt, sampleIds, subset), ctx.config.computeTimeoutMs, 'Computing the missing terms');
              } catch (error) {
                failures.set(group, error as Error);
              }
            }),
          );
          return keys.map((key) => failures.get(key.slice(0, key.lastIndexOf(':'))));
        },
        // Only missing keys are loaded, and once filled they are read from the database.
        { cache: false },
      ),
  );
}

/**
 * The stored rows of these samples, with kNorm and kTrace (and their producers) over `subset`: the
 * sample_metric row, its kernel columns taken from sample_subset_metric for a named subset.
 */
async function storedRows(ctx: Pick<Context, 'db'>, checkpointId: number, sampleIds: readonly number[], subset: ParameterSubset): Promise<Map<number, SampleMetricRow>> {
  const rows = new Map((await sampleMetricRows(ctx.db, checkpointId, sampleIds)).map((r) => [r.sampleId, r]));
  if (subset === ALL_PARAMETERS) return rows;
  const kernel = new Map((await sampleSubsetMetricRows(ctx.db, checkpointId, subset, sampleIds)).map((r) => [r.sampleId, r]));
  const out = new Map<number, SampleMetricRow>();
  for (const sampleId of sampleIds) {
    const row = rows.get(sampleId);
    const k = kernel.get(sampleId);
    if (!row && !k) continue;
    const base = row ?? emptyRow(checkpointId, sampleId, k!.updatedAt);
    out.set(sampleId, { ...base, kNorm: k?.kNorm ?? null, kNormSrc: k?.kNormSrc ?? null, kTrace: k?.kTrace ?? null, kTraceSrc: k?.kTraceSrc ?? null, subset });
  }
  return out;
}

/** A sample_metric row without values (a sample whose only stored terms are over a named subset). */
function emptyRow(checkpointId: number, sampleId: number, updatedAt: Date): SampleMetric {
  const row: Record<string, unknown> = { checkpointId, sampleId, updatedAt };
  for (const t of TERMS) {
    row[t.field] = t.sqlType === 'real[]' ? [] : null;
    row[`${t.field}Src`] = null;
  }
  return row as unknown as SampleMetric;
}

function lacks(row: SampleMetric | undefined, terms: readonly TermName[]): boolean {
  if (!row) return true;
  return terms.some((t) => {
    const field = TERMS.find((spec) => spec.term === t)!.field;
    const value = row[field];
    return value === null || value === undefined || (Array.isArray(value) && value.length === 0);
  });
}

/**
 * Per-sample terms at a checkpoint, one row per id in the order given, kNorm and kTrace over
 * `subset`: what is stored, with the missing values computed now and written back. Up to
 * TANGENT_INLINE_MAX_SAMPLES samples missing a term (for the whole request) are computed inline
 * (batched by the request's loader); for more, a job is started and the query fails with
 * TERMS_PENDING and the job's id, unless it finishes within `waitMs`. A caller who may not compute
 * (src/modules/terms/compute-policy.ts) gets TERMS_PENDING with the missing count and no job.
 */
export async function sampleTerms(
  ctx: TermsRequestContext,
  checkpointId: number,
  sampleIds: readonly number[],
  terms: readonly TermName[],
  options: { waitMs?: number | null; subset?: ParameterSubset } = {},
): Promise<SampleMetricRow[]> {
  const { waitMs } = options;
  const subset = options.subset ?? ALL_PARAMETERS;
  if (terms.length === 0) throw new BadUserInputError('Name at least one term', 'terms');
  if (sampleIds.length > ctx.config.maxPageSize) {
    throw new BadUserInputError(`At most ${ctx.config.maxPageSize} samples per request; for more, run computeTerms and page through Checkpoint.metrics`, 'sampleIds');
  }
  if (waitMs !== null && waitMs !== undefined && (!Number.isInteger(waitMs) || waitMs < 0)) throw new BadUserInputError('waitMs must be a non-negative number of milliseconds', 'waitMs');
  const unique = [...new Set(sampleIds)];
  let rows = await storedRows(ctx, checkpointId, unique, subset);
  const missing = unique.filter((id) => lacks(rows.get(id), terms));
  if (missing.length > 0) {
    const runtime = ctx.runtime;
    const ckpt = await runtime.compute.checkpoint(checkpointId);
    await checkSubset(ctx, checkpointId, subset);
    if (!mayCompute(ctx.config, ctx.caller)) throw notComputing(ctx, checkpointId, [{ name: terms.join(', '), missing: missing.length }]);
    if (missing.length <= ctx.config.compute.inlineMaxSamples && reserveInline(ctx, missing.length)) {
      await runtime.compute.samples(ckpt, missing); // BAD_USER_INPUT for an id that is not the dataset's, before any compute
      await chargeSamples(ctx, missing.length);
      await Promise.all(missing.map((id) => fillLoader(ctx, runtime).load(`${checkpointId}:${subset}:${id}`)));
    } else {
      const job = await startJob(runtime, { checkpointId, terms: [...terms], targetKey: null, subset, scope: { sampleIds: missing } }, ctx, null);
      const finished = waitMs ? await awaitJob(runtime, job.id, waitMs) : job;
      if (!finished || finished.status === 'QUEUED' || finished.status === 'RUNNING') {
        throw new TermsPendingError(String(job.id), `${missing.length} samples lack terms; job ${job.id} is computing them (follow it with job(id) or the jobProgress subscription)`);
      }
      if (finished.status !== 'COMPLETED') {
        throw new TermsMissingError(checkpointId, [{ name: terms.join(', '), missing: missing.length }]);
      }
    }
    rows = await storedRows(ctx, checkpointId, unique, subset);
  }
  return sampleIds.map((id) => {
    const row = rows.get(id);
    invariant(row && !lacks(row, terms), `sample ${id} still lacks terms at checkpoint ${checkpointId} after computing them`);
    return row;
  });
}

/** Work of one compute pass: the per-sample terms over one subset, and kCross against target sets over it. */
interface SubsetWork {
  subset: ParameterSubset;
  /** Per-sample terms missing, and the samples missing any of them. */
  terms: Set<TermName>;
  ids: Set<number>;
  /** kCross per target set: the samples missing it. */
  cross: Map<string, number[]>;
}

/**
 * Makes `missing` (from findMissingTerms) present for every sample in `scope`: inline when at most
 * TANGENT_INLINE_MAX_SAMPLES samples lack them, otherwise as durable jobs, answering TERMS_PENDING
 * with the first one's id. Work is grouped by parameter subset: each subset's kernel terms, and the
 * terms that do not depend on a subset, come from one pass of K over that subset (a query reads one
 * subset, so this is one group unless a caller mixes them). The curation seam (ensureTerms) calls this
 * once the compute policy has let `by` compute; inline work counts against the request's inline
 * allowance (src/modules/terms/compute-policy.ts) and `by`'s budget, a job against its budget too.
 */
export async function makeTermsPresent(runtime: ComputeRuntime, checkpointId: number, missing: readonly MissingTerm[], scope: SampleScope, by: ComputeCaller): Promise<void> {
  const { db, config } = runtime.deps;
  const limit = config.compute.inlineMaxSamples;
  const lists = await Promise.all(missing.map((m) => missingSampleIds(db.sql, checkpointId, m.term, scope, limit + 1)));
  const groups = new Map<string, SubsetWork>();
  missing.forEach((m, i) => {
    // Kernel terms are over the query's subset; the others do not depend on one and are computed in
    // the same pass as K over it.
    const subset = m.term.subset ?? ALL_PARAMETERS;
    const group = groups.get(subset) ?? { subset, terms: new Set(), ids: new Set(), cross: new Map() };
    groups.set(subset, group);
    if (m.term.term === 'K_CROSS') group.cross.set(m.term.targetKey!, lists[i]!);
    else {
      group.terms.add(m.term.term as TermName);
      for (const id of lists[i]!) group.ids.add(id);
    }
  });
  // The subset was checked against the model by the request path (checkSubset) before ensureTerms.
  const ckpt = await runtime.compute.checkpoint(checkpointId);
  const inlineSamples = [...groups.values()].reduce((n, g) => n + g.ids.size + [...g.cross.values()].reduce((m, ids) => m + ids.length, 0), 0);
  const inline = lists.every((l) => l.length <= limit) && [...groups.values()].every((g) => g.ids.size <= limit) && reserveInline(by, inlineSamples);
  if (inline) {
    await chargeSamples(by, inlineSamples);
    const work: Promise<void>[] = [];
    for (const g of groups.values()) {
      if (g.ids.size) work.push(runtime.compute.fillSampleTerms(ckpt, [...g.ids], g.subset));
      for (const [targetKey, ids] of g.cross) work.push(runtime.compute.fillKCross(ckpt, targetKey, ids, g.subset));
    }
    await withTimeout(Promise.all(work), config.computeTimeoutMs, 'Computing the missing terms');
    return;
  }
  const jobScope: JobScope = {
    ...(scope.sampleIds?.length ? { sampleIds: [...scope.sampleIds] } : {}),
    ...(scope.splits?.length ? { splits: [...scope.splits] } : {}),
    ...(scope.labels?.length ? { labels: [...scope.labels] } : {}),
  };
  // One job per subset and target set (each subset's per-sample terms ride with its first).
  const jobs = [];
  for (const g of groups.values()) {
    const targets: (string | null)[] = g.cross.size ? [...g.cross.keys()] : [null];
    for (const [i, targetKey] of targets.entries()) {
      jobs.push(await startJob(runtime, { checkpointId, terms: i === 0 ? [...g.terms] : [], targetKey, subset: g.subset, scope: jobScope }, by, null));
    }
  }
  const first = jobs[0]!;
  throw new TermsPendingError(
    String(first.id),
    `${Math.max(...missing.map((m) => m.missing))} samples lack ${missing.map((m) => m.name).join(', ')} at checkpoint ${checkpointId}; job ${first.id} is computing them`,
  );
}
