import { targetKey } from './term-columns.js';
import { ALL_PARAMETERS } from '../../platform/values/parameter-subset.js';
import { BadUserInputError } from '../../platform/errors.js';
import { decodeCursor, pageSize } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { checkSubset } from '../terms/subsets.js';
import { ensureTerms } from '../terms/availability.js';
import { checkpointInfo, resolveTarget, type CurationContext } from './checkpoint-info.js';
import { queryDigest, querySubset, requiredTerms, scopeOf, type BoundQuery, type SampleQuery } from './query.js';
import { rankCount, rankedRows, rankPage, type CheckpointInfo, type RankedPage, type RankedSampleRow } from './ranking-storage.js';
import type { RequiredTerm } from './term-columns.js';

export type { RankedSampleRow };

/** A query checked and bound to its checkpoint: what the SQL builders and the export need. */
export interface PreparedQuery extends BoundQuery {
  info: CheckpointInfo;
}

function bound(checkpointId: number, query: SampleQuery, targetKey: string | null): BoundQuery {
  // The subset is part of the digest only when it is not 'all', so cursors issued before subsets stay valid.
  const subset = querySubset(query);
  const shape = subset === ALL_PARAMETERS ? [query.filter, query.order, targetKey] : [query.filter, query.order, targetKey, subset];
  return { checkpointId, query, targetKey, list: `ranked:${checkpointId}:${queryDigest(shape)}` };
}

/** Resolves the checkpoint and target and makes sure every term the query reads is there (ensureTerms). */
export async function prepareQuery(ctx: CurationContext, checkpointId: number, query: SampleQuery): Promise<PreparedQuery> {
  const info = await checkpointInfo(ctx, checkpointId);
  const targetKey = await resolveTarget(ctx, info.datasetId, query.target);
  await checkSubset(ctx, checkpointId, querySubset(query));
  await ensureTerms(ctx, checkpointId, requiredTerms([query.order.term], query.filter, targetKey, querySubset(query)), scopeOf(info.datasetId, query.filter));
  return { ...bound(checkpointId, query, targetKey), info };
}

/**
 * An edge of a ranked page, its cursor made when read. A class, so that the getter is one function
 * on one prototype: an object literal with a getter makes a closure and an accessor per edge.
 */
class RankedEdge {
  constructor(
    readonly node: RankedSampleRow,
    private readonly cursorOf: (row: RankedSampleRow) => string,
  ) {}
  get cursor(): string {
    return this.cursorOf(this.node);
  }
}

/** `first: 0`: no statement, no rows. */
const EMPTY_PAGE: RankedPage = { columns: [], rows: [] };

/** Decodes `after` for a query: [value, sampleId]. */
export function afterKey(q: BoundQuery, after: string | null | undefined): { value: number; sampleId: number } | null {
  const key = decodeCursor(q.list, after);
  if (key === null) return null;
  const [value, sampleId] = key;
  if (key.length !== 2 || typeof value !== 'number' || typeof sampleId !== 'number' || !Number.isInteger(sampleId)) {
    throw new BadUserInputError('The cursor is not one this server issued for this list', 'after');
  }
  return { value, sampleId };
}

/** A page of a query whose target is not a saved selection, worked out from its arguments alone (uncheckedPage). */
interface UncheckedPage {
  q: BoundQuery;
  required: RequiredTerm[];
  after: { value: number; sampleId: number } | null;
  limit: number;
}

/**
 * A query whose page needs nothing from the database to be read (its target is not a saved
 * selection): bound, its required terms and its keyset position worked out from the arguments alone,
 * so that the page can be read before (or beside) the checks that decide whether it may be answered.
 * Throws what the arguments alone are refused with (the same errors, in the same order, as before).
 */
function uncheckedPage(checkpointId: number, query: SampleQuery, page: { first?: number | null; after?: string | null }, limit: number): UncheckedPage {
  const q = bound(checkpointId, query, query.target ? targetKey(query.target) : null);
  const required = requiredTerms([query.order.term], query.filter, q.targetKey, querySubset(query));
  return { q, required, after: afterKey(q, page.after), limit };
}

/**
 * The key of a page read ahead: everything its statement is made of (rankStatement's inputs: the
 * checkpoint, the whole parsed query, the target key, the keyset position, the limit), as JSON, so
 * only the same page is ever taken for it, without composing the statement again to compare.
 */
function readAheadKey(p: UncheckedPage): string {
  return JSON.stringify([p.q.checkpointId, p.q.query, p.q.targetKey, p.after, p.limit]);
}

/**
 * Starts reading a page of `rankedSamples` before the resolver runs: Query.checkpoint calls this
 * (through readAheadCheckpointFields) while it is still looking the checkpoint up, so that the page
 * statement, the longest part of the request, does not wait for that lookup. Nothing is decided here:
 * the resolver takes the page only if it asks for exactly the same page (readAheadKey), and only after its own
 * checks (the checkpoint, the subset, the terms) would have let it read the page anyway. A page whose
 * arguments are refused is not read (the resolver refuses them); one whose checkpoint is missing is
 * read and never taken (Query.checkpoint answers null). A failed read is the resolver's failure if
 * it takes it, and no one's otherwise.
 */
export function readAheadRankPage(ctx: CurationContext, checkpointId: number, query: SampleQuery, page: { first?: number | null; after?: string | null }): void {
  if (query.target?.kind === 'selection') return;
  const limit = pageSize(page.first, ctx.config.maxPageSize);
  if (limit === 0) return;
  const p = uncheckedPage(checkpointId, query, page, limit);
  const key = readAheadKey(p);
  if (ctx.loaders.pagesReadAhead.has(key)) return;
  const read = rankPage(ctx.db.sql, p.q, p.after, limit + 1);
  read.catch(() => {});
  ctx.loaders.pagesReadAhead.set(key, read);
}

/** The page read ahead for this statement, taken (a second read, after terms were computed, reads afresh), or null. */
function takeReadAhead(ctx: CurationContext, p: UncheckedPage): Promise<RankedPage> | null {
  if (ctx.loaders.pagesReadAhead.size === 0) return null;
  const key = readAheadKey(p);
  const read = ctx.loaders.pagesReadAhead.get(key);
  if (!read) return null;
  ctx.loaders.pagesReadAhead.delete(key);
  return read;
}

/**
 * Samples at a checkpoint, filtered and ordered by any term (ties by sample id in the same
 * direction), as a keyset-paginated connection; totalCount runs only when asked for.
 */
export async function rankSamples(
  ctx: CurationContext,
  checkpointId: number,
  query: SampleQuery,
  page: { first?: number | null; after?: string | null },
): Promise<ConnectionRow<RankedSampleRow>> {
  const limit = pageSize(page.first, ctx.config.maxPageSize);
  let prepared: PreparedQuery;
  let raw: RankedPage;
  if (query.target?.kind === 'selection') {
    // A selection as target must be checked against the dataset before anything reads with it.
    prepared = await prepareQuery(ctx, checkpointId, query);
    const after = afterKey(prepared, page.after);
    raw = limit > 0 ? await rankPage(ctx.db.sql, prepared, after, limit + 1) : EMPTY_PAGE;
  } else {
    // Otherwise the statement needs nothing from the database: the page, the checkpoint lookup and
    // the term check run side by side, and the page is thrown away unless the check passes (the
    // check decides, never the page; two round trips less on the hot path). The page may already
    // be under way, read ahead by Query.checkpoint (readAheadRankPage).
    const p = uncheckedPage(checkpointId, query, page, limit);
    const { q, required, after } = p;
    const checked = (async () => {
      const info = await checkpointInfo(ctx, checkpointId);
      await checkSubset(ctx, checkpointId, querySubset(query));
      const computed = await ensureTerms(ctx, checkpointId, required, scopeOf(info.datasetId, query.filter));
      return { info, computed };
    })();
    const read = () => (limit > 0 ? rankPage(ctx.db.sql, q, after, limit + 1) : Promise.resolve(EMPTY_PAGE));
    const first = (limit > 0 && takeReadAhead(ctx, p)) || read();
    const [{ info, computed }, rows] = await Promise.all([checked, first]);
    prepared = { ...q, info };
    // Terms computed by the check were not there when the page was read side by side: read it again.
    raw = computed ? await read() : rows;
  }
  const rows = raw.rows.length ? rankedRows(prepared.info, raw, querySubset(query)) : [];
  const page_ = rows.slice(0, limit);
  // Cursors are made only when a client reads them, with the JSON written directly (this is what
  // encodeCursor writes for [value, sampleId]: finite numbers print the same in both).
  const prefix = `{"l":${JSON.stringify(prepared.list)},"k":[`;
  const cursorOf = (row: RankedSampleRow) => Buffer.from(`${prefix}${row.score},${row.sampleId}]}`).toString('base64url');
  // Edges (an object and a cursor per row) only when a client reads them: a 1000-row page read as
  // `nodes` or `columns` does not build them.
  let edges: ConnectionRow<RankedSampleRow>['edges'] | null = null;
  return {
    nodes: page_,
    get edges() {
      return (edges ??= page_.map((node) => new RankedEdge(node, cursorOf)));
    },
    pageInfo: { hasNextPage: rows.length > limit, endCursor: page_.length ? cursorOf(page_.at(-1)!) : null },
    count: () => rankCount(ctx.db.sql, prepared),
  };
}
