import type { Selection } from '../../platform/db/generated/client.js';
import { SCALAR_TERM_SPECS } from './term-columns.js';
import { SqlParams, termTable } from './query-sql.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { checkpointInfo, classNameOf, type CurationContext } from './checkpoint-info.js';
import { querySubset } from './query.js';
import { rankStatement, toRankedRows, type PreparedQuery } from './rank.js';
import { storedStrategy } from './selections.js';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** What to export: a saved selection (with the terms at one checkpoint), or a filtered, ordered query. */
export type ExportSource =
  | { kind: 'selection'; selection: Selection; checkpointId: number }
  | { kind: 'query'; prepared: PreparedQuery };

/** Rows per database round trip: large enough to amortise it, small enough to keep memory flat. */
export const EXPORT_BATCH_ROWS = 5_000;

const TERM_FIELDS = [...SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => t.field), 'correct'];

/** The parameter subset an export's kernel terms are over: the query's, or the selection's strategy's. */
function exportSubset(source: ExportSource): string {
  return source.kind === 'selection' ? storedStrategy(source.selection).subset : querySubset(source.prepared.query);
}

/**
 * The columns of an export, in order; the JSONL keys are the same names. Kernel terms over a named
 * parameter subset add a `subset` column saying which (over 'all' there is none, as before subsets).
 */
export function exportColumns(source: ExportSource): string[] {
  const cross = source.kind === 'selection' ? source.selection.targetKey !== null : source.prepared.targetKey !== null;
  const head = source.kind === 'selection' ? ['rank', 'score', 'sampleId'] : ['sampleId'];
  const middle = ['index', 'label', 'className', 'split', ...(source.kind === 'query' ? ['score'] : [])];
  return [...head, ...middle, ...TERM_FIELDS, ...(cross ? ['kCross'] : []), ...(exportSubset(source) === ALL_PARAMETERS ? [] : ['subset'])];
}

/**
 * The checkpoint whose terms a selection's export carries: the one asked for (of a run on the same
 * dataset), or the selection's last checkpoint.
 */
export async function selectionExportSource(ctx: CurationContext, selectionId: number, checkpointId: number | null): Promise<ExportSource> {
  const selection = await ctx.db.prisma.selection.findUnique({ where: { id: selectionId } });
  if (!selection) throw new NotFoundError('Selection', selectionId);
  const chosen = checkpointId ?? selection.checkpointIds.at(-1)!;
  const info = await checkpointInfo(ctx, chosen);
  if (info.datasetId !== selection.datasetId) throw new BadUserInputError(`Checkpoint ${chosen} is of a run on another dataset`, 'checkpoint');
  return { kind: 'selection', selection, checkpointId: chosen };
}

type Row = Record<string, unknown>;

/** A statement for the rows after a keyset position (`after` null: from the start), at most `limit` (null: all). */
function statementFor(source: ExportSource, after: Row | null, limit: number | null): { text: string; values: unknown[] } {
  if (source.kind === 'query') {
    return rankStatement(source.prepared, after ? { value: after.score as number, sampleId: after.sampleId as number } : null, limit);
  }
  const { selection, checkpointId } = source;
  const subset = exportSubset(source);
  const p = new SqlParams();
  const c = p.add(checkpointId, 'int');
  const s_ = subset !== ALL_PARAMETERS || selection.targetKey !== null ? p.add(subset, 'text') : null;
  // Kernel terms over a named subset come from sample_subset_metric (k), the rest from sample_metric (m).
  const metric = SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => `${termTable(t.term, subset) === 'subset' ? 'k' : 'm'}.${t.column} AS "${t.field}"`);
  const cross = selection.targetKey !== null;
  const text = `SELECT ss.rank, ss.score, ss.sample_id AS "sampleId", s.index, s.label, s.split, ${metric.join(', ')}, m.correct AS "correct"
      ${cross ? ', x.k_cross AS "kCross"' : ''}
    FROM selection_sample ss JOIN sample s ON s.id = ss.sample_id
    LEFT JOIN sample_metric m ON m.checkpoint_id = ${c} AND m.sample_id = ss.sample_id
    ${subset === ALL_PARAMETERS ? '' : `LEFT JOIN sample_subset_metric k ON k.checkpoint_id = ${c} AND k.subset = ${s_} AND k.sample_id = ss.sample_id`}
    ${cross ? `LEFT JOIN sample_cross_metric x ON x.checkpoint_id = ${c} AND x.target_key = ${p.add(selection.targetKey, 'text')} AND x.subset = ${s_} AND x.sample_id = ss.sample_id` : ''}
    WHERE ss.selection_id = ${p.add(selection.id, 'int')}${after ? ` AND ss.rank > ${p.add(after.rank, 'int')}` : ''}
    ORDER BY ss.rank${limit === null ? '' : ` LIMIT ${p.add(limit, 'int')}`}`;
  return { text, values: p.values };
}

/** Rows as they come from the database, with ints made numbers and the class name (and subset) added. */
function finish(source: ExportSource, classNames: readonly string[], rows: Row[]): Row[] {
  if (source.kind === 'query') return toRankedRows(source.prepared.info, rows as unknown as Parameters<typeof toRankedRows>[1], exportSubset(source)) as unknown as Row[];
  const subset = exportSubset(source);
  return rows.map((r) => ({
    subset,
    ...r,
    rank: Number(r.rank),
    score: Number(r.score),
    sampleId: Number(r.sampleId),
    index: Number(r.index),
    label: Number(r.label),
    className: classNameOf(classNames, Number(r.label)),
  }));
}

/**
 * Reads every row of an export in batches and hands each batch to `onBatch`, which may take its
 * time (a slow client): no batch is read before the previous one was handed over, so memory stays
 * at one batch whatever the size. On PostgreSQL the rows come from a server-side cursor in one
 * transaction (one consistent snapshot); on the embedded PGlite, which is a single connection that a
 * long transaction would hold against every other request, from keyset pages, one statement each.
 */
export async function readExport(ctx: CurationContext, source: ExportSource, onBatch: (rows: Row[]) => Promise<void>, batchRows = EXPORT_BATCH_ROWS): Promise<number> {
  const datasetId = source.kind === 'selection' ? source.selection.datasetId : source.prepared.info.datasetId;
  const dataset = await ctx.loaders.datasetById.load(datasetId);
  const classNames = dataset?.classNames ?? [];
  let total = 0;
  if (ctx.db.kind === 'postgres') {
    const release = await exportSlots(ctx).acquire();
    try {
      await cursorExport();
    } finally {
      release();
    }
    return total;
  }
  let after: Row | null = null;
  for (;;) {
    const { text, values } = statementFor(source, after, batchRows);
    // named: export.page
    const rows = finish(source, classNames, await ctx.db.sql.query<Row>(text, values));
    if (rows.length === 0) break;
    total += rows.length;
    after = rows.at(-1)!;
    await onBatch(rows);
    if (rows.length < batchRows) break;
  }
  return total;

  async function cursorExport(): Promise<void> {
    await ctx.db.transaction(async (tx) => {
      const { text, values } = statementFor(source, null, null);
      // Every row will be read: plan for the whole result, not for the first 10% (the cursor default,
      // which picks nested loops that are quadratic when the statistics are behind a bulk load).
      await tx.query('SET LOCAL cursor_tuple_fraction = 1');
      // named: export.cursor
      await tx.query(`DECLARE tangent_export NO SCROLL CURSOR FOR ${text}`, values);
      for (;;) {
        const rows = await tx.query<Row>(`FETCH FORWARD ${batchRows} FROM tangent_export`);
        if (rows.length === 0) break;
        total += rows.length;
        await onBatch(finish(source, classNames, rows));
        if (rows.length < batchRows) break;
      }
      await tx.query('CLOSE tangent_export');
    });
  }
}

/**
 * At most half the connection pool streams exports at once (each holds a connection for as long as
 * its client reads); the others wait their turn, so exports can never starve GraphQL of connections.
 */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

const slots = new WeakMap<object, Slots>();

function exportSlots(ctx: CurationContext): Slots {
  let s = slots.get(ctx.db);
  if (!s) {
    const poolSize = ctx.config.database.kind === 'postgres' ? ctx.config.database.poolSize : 2;
    slots.set(ctx.db, (s = new Slots(Math.max(1, Math.floor(poolSize / 2)))));
  }
  return s;
}

/**
 * One CSV field (RFC 4180): quoted only when it must be. A text that a spreadsheet would run as a
 * formula (a class name like `=HYPERLINK(…)`) gets a leading apostrophe, as OWASP advises for CSV
 * exports; numbers (also numbers the driver hands over as text) stay as they are.
 */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text) && !Number.isFinite(Number(text))) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * Formats rows as JSONL or CSV. Written by hand: the values are numbers, booleans and two short
 * strings (class name, split), so the whole of CSV that matters is the quoting rule above.
 */
export function formatter(format: ExportFormat, columns: readonly string[]) {
  return {
    header: format === 'csv' ? `${columns.join(',')}\n` : '',
    rows(rows: readonly Row[]): string {
      let out = '';
      if (format === 'jsonl') {
        for (const row of rows) {
          const ordered: Row = {};
          for (const c of columns) ordered[c] = row[c] ?? null;
          out += `${JSON.stringify(ordered)}\n`;
        }
      } else {
        for (const row of rows) out += `${columns.map((c) => csvField(row[c])).join(',')}\n`;
      }
      return out;
    },
  };
}

/** Streams a whole export to `write` (which resolves once the chunk may be followed by another). */
export async function writeExport(
  ctx: CurationContext,
  source: ExportSource,
  format: ExportFormat,
  write: (chunk: string) => Promise<void>,
  batchRows = EXPORT_BATCH_ROWS,
): Promise<number> {
  const columns = exportColumns(source);
  const f = formatter(format, columns);
  if (f.header) await write(f.header);
  return readExport(ctx, source, (rows) => write(f.rows(rows)), batchRows);
}

