import type { Context } from '../context.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError } from '../../platform/errors.js';
import type { ComputeRuntime } from '../jobs/runtime.js';
import type { ModelRow } from '../../platform/graphql/rows.js';
import { subsetHasStoredValues } from './coverage-storage.js';

/** A named parameter subset of a model (Model.parameterSubsets). */
export interface ParameterSubsetRow {
  name: string;
  parameterCount: number;
  layers: string[];
}

/** The parameter subsets a stored model answers to by name ('all', 'head', and its own), from the engine. */
export async function parameterSubsets(ctx: Pick<Context, 'runtime'>, model: ModelRow): Promise<ParameterSubsetRow[]> {
  const subsets = await ctx.runtime.compute.parameterSubsets(model);
  return subsets.map((s) => ({ name: s.name, parameterCount: s.parameters, layers: [...s.layers] }));
}

/** At most this many (checkpoint, subset) pairs are remembered as valid (ComputeService.knownSubsets). */
const KNOWN_MAX = 100_000;

/**
 * Refuses, with BAD_USER_INPUT naming the valid ones, a parameter subset that the checkpoint's model
 * does not answer to. 'all' always exists. This is the one check of a subset against the model:
 * each request path (a curation query, statistics, a selection, recordKCross, computeTerms,
 * sampleTerms, firstOrder) makes it once, before anything is computed or a job is made; what it
 * calls (ensureTerms, the jobs, the compute service and the engine) takes the checked subset as is.
 * The name's syntax was checked at the edge (parseParameterSubset). A subset with values stored at the checkpoint exists
 * (every writer checked it), which one read of the coverage counters tells without loading the
 * model; otherwise the model's own list decides (loaded once per model and process). Pairs found
 * valid are remembered by the process's compute runtime (a checkpoint's model never changes). A
 * process without a compute runtime cannot load models: it lets the name through, and values over
 * an unknown subset simply do not exist there (TERMS_MISSING).
 */
export async function checkSubset(ctx: Pick<Context, 'db' | 'runtimeIfStarted'>, checkpointId: number, subset: ParameterSubset, field = 'subset'): Promise<void> {
  if (subset === ALL_PARAMETERS) return;
  const runtime = ctx.runtimeIfStarted;
  const known = runtime?.compute.knownSubsets;
  const key = `${checkpointId}:${subset}`;
  if (known?.has(key)) return;
  if (!(await subsetHasStoredValues(ctx.db.sql, checkpointId, subset))) {
    if (!runtime) return;
    await requireModelSubset(runtime, checkpointId, subset, field);
  }
  if (!known) return;
  if (known.size >= KNOWN_MAX) known.clear();
  known.add(key);
}

/** The model's own list decides (ComputeService.parameterSubsets: loaded once per model and process). */
async function requireModelSubset(runtime: ComputeRuntime, checkpointId: number, subset: ParameterSubset, field: string): Promise<void> {
  const ckpt = await runtime.compute.checkpoint(checkpointId);
  const subsets = await runtime.compute.parameterSubsets({ ...ckpt.model, inputLength: ckpt.inputLength, channels: ckpt.channels, numClasses: ckpt.numClasses });
  if (!subsets.some((s) => s.name === subset)) {
    const names = subsets.map((s) => s.name);
    throw new BadUserInputError(`Model ${ckpt.model.id} has no parameter subset ${JSON.stringify(subset)}; its subsets: ${names.join(', ')}`, field, { subsets: names });
  }
}
