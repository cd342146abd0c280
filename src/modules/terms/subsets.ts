import type { Context } from '../context.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import type { ModelRow } from '../../platform/graphql/rows.js';
import { computeRuntime, findComputeRuntime } from '../jobs/runtime.js';

/** A named parameter subset of a model (Model.parameterSubsets). */
export interface ParameterSubsetRow {
  name: string;
  parameterCount: number;
  layers: string[];
}

/** The parameter subsets a stored model answers to by name ('all', 'head', and its own), from the engine. */
export async function parameterSubsets(ctx: Pick<Context, 'db'>, model: ModelRow): Promise<ParameterSubsetRow[]> {
  const subsets = await computeRuntime(ctx.db).compute.parameterSubsets(model);
  return subsets.map((s) => ({ name: s.name, parameterCount: s.parameters, layers: [...s.layers] }));
}

/** (checkpoint, subset) pairs known to be valid, per database; a checkpoint's model never changes. */
const known = new WeakMap<object, Set<string>>();
const KNOWN_MAX = 100_000;

/**
 * Refuses, with BAD_USER_INPUT naming the valid ones, a parameter subset that the checkpoint's model
 * does not answer to. 'all' always exists. A subset with values stored at the checkpoint exists
 * (every writer checked it), which one read of the coverage counters tells without loading the
 * model; otherwise the model's own list decides (loaded once per model and process). A process
 * without a compute runtime cannot load models: it lets the name through, and values over an
 * unknown subset simply do not exist there (TERMS_MISSING).
 */
export async function checkSubset(ctx: Pick<Context, 'db'>, checkpointId: number, subset: string, field = 'subset'): Promise<void> {
  if (subset === ALL_PARAMETERS) return;
  let set = known.get(ctx.db);
  if (!set) known.set(ctx.db, (set = new Set()));
  const key = `${checkpointId}:${subset}`;
  if (set.has(key)) return;
  // named: subsets.stored
  const [stored] = await ctx.db.sql.query<{ found: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM metric_coverage WHERE checkpoint_id = $1 AND present > 0
                    AND (term = ANY($2::text[]) OR starts_with(term, $3))) AS found`,
    [checkpointId, [`k_norm@${subset}`, `k_trace@${subset}`], `k_cross@${subset}:`],
  );
  if (!stored?.found) {
    const runtime = findComputeRuntime(ctx.db);
    if (!runtime) return;
    await runtime.compute.requireSubset(await runtime.compute.checkpoint(checkpointId), subset, field);
  }
  if (set.size >= KNOWN_MAX) set.clear();
  set.add(key);
}
