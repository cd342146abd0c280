import type { GraphQLResolveInfo } from 'graphql';
import { childArguments, childFields } from '../../platform/graphql/lookahead.js';
import type { CurationContext } from './checkpoint-info.js';
import { parseQuery } from './inputs.js';
import { readAheadRankPage } from './rank.js';

/**
 * The Checkpoint fields of this module that start with the checkpoint and its run's dataset
 * (`checkpointInfo`, the checkpoints module's `checkpointContextById`).
 */
const CONTEXT_FIELDS = new Set(['rankedSamples', 'termStats', 'termColumns', 'exportUrl']);

/** At most this many `rankedSamples` pages are read ahead under one checkpoint (aliases can ask for many). */
const MAX_READ_AHEAD = 4;

/**
 * Called by Query.checkpoint before it looks the checkpoint up, with its own field's selection:
 * starts what the curation fields under it will read and does not depend on the lookup, so that it
 * does not wait for it (a GraphQL executor runs a child's resolver only once its parent's value is
 * there). Today that is the page of each `rankedSamples` selected directly (not through a fragment,
 * not under @skip or @include), its arguments coerced as the executor will coerce them; whatever
 * cannot be coerced or parsed is left to the resolver, which refuses it as before. Nothing here
 * decides an answer: see readAheadRankPage.
 *
 * Answers whether a field that starts with the checkpoint's context is selected, so that
 * Query.checkpoint can read the checkpoint with its context in one statement (the resolvers then
 * find it in the request's loaders) instead of the checkpoint alone and the context after it.
 */
export function readAheadCheckpointFields(ctx: CurationContext, checkpointId: number, info: GraphQLResolveInfo): boolean {
  let needsContext = false;
  let readAhead = 0;
  for (const child of childFields(info)) {
    if (CONTEXT_FIELDS.has(child.name)) needsContext = true;
    if (child.name !== 'rankedSamples' || child.conditional || readAhead >= MAX_READ_AHEAD) continue;
    readAhead++;
    const args = childArguments(info, child) as (Parameters<typeof parseQuery>[0] & { first?: number | null; after?: string | null }) | null;
    if (!args) continue;
    try {
      readAheadRankPage(ctx, checkpointId, parseQuery(args), args);
    } catch {
      // Refused arguments: the resolver refuses them in its turn, with the error it always gave.
    }
  }
  return needsContext;
}
