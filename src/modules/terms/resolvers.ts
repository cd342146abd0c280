import { refreshLoaders, type Context } from '../context.js';
import { TERMS, type TermName } from '../../platform/values/term.js';
import { BadUserInputError, NotFoundError, invariant } from '../../platform/errors.js';
import { progressOf } from '../jobs/progress.js';
import { cancelJob, getJob, isActive, listJobs, retryJob, startJob, type ComputeTermsRequest } from '../jobs/service.js';
import { firstOrderAt } from './first-order.js';
import { sampleTerms } from './compute-terms.js';
import { resolveTarget } from '../curation/checkpoint-info.js';
import { loadCheckpoint } from '../checkpoints/service.js';
import { connectionFields } from '../../platform/graphql/connections.js';
import { parseTarget } from '../curation/inputs.js';
import { parseParameterSubset } from '../../platform/values/parameter-subset.js';
import type { ComputeTermsInput, Resolvers } from '../generated/types.js';
import { parseId } from '../../platform/graphql/inputs.js';

/** What `Query.serverInfo` returns; the compute fields resolve from the context. */
export interface ServerInfoRow {
  version: string;
  database: string;
}

const MAX_SPLIT_LENGTH = 64;

async function loadSample(ctx: Context, id: number) {
  const sample = await ctx.loaders.sampleById.load(id);
  invariant(sample, `sample ${id} is referenced but missing`);
  return sample;
}

function parseIds(ids: readonly (string | number)[], field: string): number[] {
  return ids.map((id, i) => parseId(id, `${field}[${i}]`));
}

/** `computeTerms`' input, checked, with its target set resolved against the checkpoint's dataset. */
export async function parseComputeTerms(ctx: Context, input: ComputeTermsInput): Promise<ComputeTermsRequest> {
  const checkpointId = parseId(input.checkpointId, 'input.checkpointId');
  const ckpt = await ctx.runtime.compute.checkpoint(checkpointId);
  const target = parseTarget(input.target, 'input.target');
  const targetKey = await resolveTarget(ctx, ckpt.datasetId, target, 'input.target');
  const subset = parseParameterSubset(input.subset, 'input.subset');
  const splits = input.splits ?? [];
  splits.forEach((split, i) => {
    if (split.length === 0 || split.length > MAX_SPLIT_LENGTH) throw new BadUserInputError(`A split is 1 to ${MAX_SPLIT_LENGTH} characters`, `input.splits[${i}]`);
  });
  const sampleIds = input.sampleIds ? parseIds(input.sampleIds, 'input.sampleIds') : [];
  if (sampleIds.length > ctx.config.maxBulkRows) throw new BadUserInputError(`At most ${ctx.config.maxBulkRows} sampleIds per request`, 'input.sampleIds');
  return {
    checkpointId,
    terms: (input.terms ?? TERMS.map((t) => t.term)) as TermName[],
    targetKey,
    subset,
    scope: { ...(sampleIds.length ? { sampleIds } : {}), ...(splits.length ? { splits } : {}) },
  };
}

export const computeResolvers: Resolvers = {
  Query: {
    job: (_, { id }, ctx) => getJob(ctx, parseId(id)),
    jobs: (_, args, ctx) => listJobs(ctx, { first: args.first, after: args.after, status: args.status }),
  },
  Mutation: {
    computeTerms: async (_, { input }, ctx) => startJob(ctx.runtime, await parseComputeTerms(ctx, input), ctx, 'input.subset'),
    cancelJob: (_, { id }, ctx) => cancelJob(ctx.runtime, parseId(id)),
    retryJob: (_, { id }, ctx) => retryJob(ctx.runtime, parseId(id)),
    purgeTrunkCache: (_, __, ctx) => ctx.runtime.compute.trunk.purge(),
  },
  Subscription: {
    jobProgress: {
      subscribe: async function* (_, { id }, ctx) {
        const jobId = parseId(id);
        const stop = new AbortController();
        // Listen before the first read, so that no move between the two is missed.
        const events = ctx.pubsub.subscribe('jobProgress', stop.signal);
        try {
          let job = await getJob(ctx, jobId);
          if (!job) throw new NotFoundError('Job', jobId);
          yield { jobProgress: job };
          if (!isActive(job.status)) return;
          for await (const event of events) {
            if (event.jobId !== jobId) continue;
            refreshLoaders(ctx);
            job = await getJob(ctx, jobId);
            if (!job) return;
            yield { jobProgress: job };
            if (!isActive(job.status)) return;
          }
        } finally {
          stop.abort();
        }
      },
    },
  },
  ServerInfo: {
    backend: (_, __, ctx) => ctx.runtime.compute.backend(),
    compute: async (_, __, ctx) => {
      const runtime = ctx.runtime;
      const stats = runtime.compute.stats();
      const held = await runtime.compute.trunk.totals();
      return {
        calls: stats.calls,
        samples: stats.samples,
        modelLoads: stats.models.loads,
        modelSwaps: stats.models.swaps,
        cachedModels: stats.models.models,
        cachedBytes: stats.models.bytes,
        inlineMaxSamples: ctx.config.compute.inlineMaxSamples,
        worker: runtime.working,
        trunkCache: { ...stats.trunk, ...held },
      };
    },
  },
  Checkpoint: {
    sampleTerms: (checkpoint, args, ctx) =>
      sampleTerms(ctx, checkpoint.id, parseIds(args.sampleIds, 'sampleIds'), args.terms as TermName[], { waitMs: args.waitMs, subset: parseParameterSubset(args.subset, 'subset') }),
    firstOrder: (checkpoint, args, ctx) =>
      firstOrderAt(ctx, ctx.runtime, checkpoint.id, parseId(args.observedId, 'observedId'), parseId(args.updatedId, 'updatedId'), args.learningRate, parseParameterSubset(args.subset, 'subset')),
    jobs: (checkpoint, args, ctx) => listJobs(ctx, { first: args.first, after: args.after, status: args.status, checkpointId: checkpoint.id }),
  },
  Job: {
    checkpoint: (job, _, ctx) => loadCheckpoint(ctx, job.checkpointId),
    terms: (job) => job.terms as TermName[],
    target: (job) => (job.targetKey === null ? null : { key: job.targetKey }),
    progress: (job) => progressOf(job),
  },
  JobConnection: connectionFields,
  FirstOrder: {
    checkpoint: (row, _, ctx) => loadCheckpoint(ctx, row.checkpointId),
    observed: (row, _, ctx) => loadSample(ctx, row.observedId),
    updated: (row, _, ctx) => loadSample(ctx, row.updatedId),
    nextCheckpoint: (row, _, ctx) => (row.nextCheckpointId === null ? null : loadCheckpoint(ctx, row.nextCheckpointId)),
  },
};
