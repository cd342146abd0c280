import type { Context } from '../context.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
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
 * does not answer to. 'all' always exists. A subset with values stored at the checkpoint exists
 * (every writer checked it), which one read of the coverage counters tells without loading the
 * model; otherwise the model's own list decides (loaded once per model and process). Pairs found
 * valid are remembered by the process's compute runtime (a checkpoint's model never changes). A
 * process without a compute runtime cannot load models: it lets the name through, and values over
 * an unknown subset simply do not exist there (TERMS_MISSING).
 */
export async function checkSubset(ctx: Pick<Context, 'db' | 'runtimeIfStarted'>, checkpointId: number, subset: string, field = 'subset'): Promise<void> {
  if (subset === ALL_PARAMETERS) return;
  const runtime = ctx.runtimeIfStarted;
  const known = runtime?.compute.knownSubsets;
  const key = `${checkpointId}:${subset}`;
  if (known?.has(key)) return;
  if (!(await subsetHasStoredValues(ctx.db.sql, checkpointId, subset))) {
    if (!runtime) return;
    await runtime.compute.requireSubset(await runtime.compute.checkpoint(checkpointId), subset, field);
  }
  if (!known) return;
  if (known.size >= KNOWN_MAX) known.clear();
  known.add(key);
}
