import { keysetAfter, longSource, orderBy, SqlParams, termTable, whereClause } from './query-sql.js';
import { targetKey } from './term-columns.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import { BadUserInputError } from '../../platform/errors.js';
import { decodeCursor, pageSize } from '../../platform/graphql/pagination.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';
import { checkSubset } from '../terms/subsets.js';
import { ensureTerms } from '../terms/availability.js';
import { checkpointInfo, classNameOf, resolveTarget, type CheckpointInfo, type CurationContext } from './checkpoint-info.js';
import { queryDigest, querySubset, requiredTerms, scopeOf, type SampleQuery } from './query.js';

/** A sample with its terms at one checkpoint, as a curation query returns it. */
export interface RankedSampleRow {
  checkpointId: number;
  sampleId: number;
  index: number;
  label: number;
  className: string;
  split: string;
  /** The value of the order term. */
  score: number;
  loss: number | null;
  correct: boolean | null;
  aNorm: number | null;
  hTrace: number | null;
  hMinEig: number | null;
  gNorm: number | null;
  kNorm: number | null;
  kTrace: number | null;
  kCross: number | null;
  /** The parameter subset kNorm, kTrace and kCross are over. */
  subset: string;
}

/** A query checked and bound to its checkpoint: what the SQL builders and the export need. */
export interface PreparedQuery extends BoundQuery {
  info: CheckpointInfo;
}

/** What a statement needs: the checkpoint, the query, the target key and the cursor list name. */
export interface BoundQuery {
  checkpointId: number;
  query: SampleQuery;
  targetKey: string | null;
  /** Cursor list name: the checkpoint and a digest of the query's shape. */
  list: string;
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
 * The statement of a query: samples with their terms, in (order term, sample id) order, after a
 * keyset position, at most `limit` rows (null: all of them, for a cursor).
 */
export function rankStatement(q: BoundQuery, after: { value: number; sampleId: number } | null, limit: number | null): { text: string; values: unknown[] } {
  const { query, targetKey } = q;
  const p = new SqlParams();
  const source = longSource(p, {
    checkpointIds: [q.checkpointId],
    drive: termTable(query.order.term, querySubset(query)),
    targetKey,
    subset: querySubset(query),
    filter: query.filter,
  });
  const value = source.column(query.order.term);
  const where = [...source.where, `${value} IS NOT NULL`];
  if (after) where.push(keysetAfter(p, value, source.sampleIdColumn, query.order.direction, after));
  const text = `SELECT ${source.sampleIdColumn} AS "sampleId", s.index, s.label, s.split, ${value} AS score, ${source.values}
    FROM ${source.from} ${whereClause(where)}
    ORDER BY ${orderBy(value, source.sampleIdColumn, query.order.direction)}${limit === null ? '' : ` LIMIT ${p.add(limit, 'int')}`}`;
  return { text, values: p.values };
}

export function countStatement(q: BoundQuery): { text: string; values: unknown[] } {
  const { query, targetKey } = q;
  const p = new SqlParams();
  const source = longSource(p, { checkpointIds: [q.checkpointId], drive: termTable(query.order.term, querySubset(query)), targetKey, subset: querySubset(query), filter: query.filter });
  const value = source.column(query.order.term);
  return { text: `SELECT count(*)::int AS n FROM ${source.from} ${whereClause([...source.where, `${value} IS NOT NULL`])}`, values: p.values };
}

type RawRow = Omit<RankedSampleRow, 'checkpointId' | 'className' | 'subset'>;

/**
 * Rows from the database into RankedSampleRows: one object literal of a fixed shape per row, with
 * the ids made numbers (some drivers give strings) and the checkpoint and class name added. Not a
 * spread, and not the driver's row objects changed in place (adding properties to those costs ten
 * times as much): a 1000-row page is on the hot path.
 */
export function toRankedRows(info: CheckpointInfo, rows: readonly RawRow[], subset: string = ALL_PARAMETERS): RankedSampleRow[] {
  const out: RankedSampleRow[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const label = Number(r.label);
    out[i] = {
      checkpointId: info.id,
      sampleId: Number(r.sampleId),
      index: Number(r.index),
      label,
      className: classNameOf(info.classNames, label),
      split: r.split,
      score: r.score,
      loss: r.loss,
      correct: r.correct,
      aNorm: r.aNorm,
      hTrace: r.hTrace,
      hMinEig: r.hMinEig,
      gNorm: r.gNorm,
      kNorm: r.kNorm,
      kTrace: r.kTrace,
      kCross: r.kCross,
      subset,
    };
  }
  return out;
}

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
  let raw: RawRow[];
  if (query.target?.kind === 'selection') {
    // A selection as target must be checked against the dataset before anything reads with it.
    prepared = await prepareQuery(ctx, checkpointId, query);
    const { text, values } = rankStatement(prepared, afterKey(prepared, page.after), limit + 1);
    // named: curation.rankPage
    raw = limit > 0 ? await ctx.db.sql.query<RawRow>(text, values) : [];
  } else {
    // Otherwise the statement needs nothing from the database: the page, the checkpoint lookup and
    // the term check run side by side, and the page is thrown away unless the check passes (the
    // check decides, never the page; two round trips less on the hot path).
    const q = bound(checkpointId, query, query.target ? targetKey(query.target) : null);
    const required = requiredTerms([query.order.term], query.filter, q.targetKey, querySubset(query));
    const { text, values } = rankStatement(q, afterKey(q, page.after), limit + 1);
    const checked = (async () => {
      const info = await checkpointInfo(ctx, checkpointId);
      await checkSubset(ctx, checkpointId, querySubset(query));
      const computed = await ensureTerms(ctx, checkpointId, required, scopeOf(info.datasetId, query.filter));
      return { info, computed };
    })();
    const read = () => (limit > 0 ? ctx.db.sql.query<RawRow>(text, values) : Promise.resolve([]));
    // named: curation.rankPage
    const [{ info, computed }, rows] = await Promise.all([checked, read()]);
    prepared = { ...q, info };
    // Terms computed by the check were not there when the page was read side by side: read it again.
    raw = computed ? await read() : rows;
  }
  const rows = toRankedRows(prepared.info, raw, querySubset(query));
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
      return (edges ??= page_.map((node) => ({
        node,
        get cursor() {
          return cursorOf(node);
        },
      })));
    },
    pageInfo: { hasNextPage: rows.length > limit, endCursor: page_.length ? cursorOf(page_.at(-1)!) : null },
    count: async () => {
      const { text, values } = countStatement(prepared);
      // named: curation.rankCount
      const [row] = await ctx.db.sql.query<{ n: number }>(text, values);
      return Number(row?.n ?? 0);
    },
  };
}
