import type { Selection } from '../../platform/db/generated/client.js';
import { SCALAR_TERM_SPECS } from './term-columns.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import type { Config } from '../../platform/config.js';
import { checkpointInfo, type CurationContext } from './checkpoint-info.js';
import { exportPage, exportThroughCursor, type ExportRow } from './export-storage.js';
import { querySubset } from './query.js';
import type { PreparedQuery } from './rank.js';
import { selectionById, storedStrategy } from './selections.js';
import type { Strategy } from './strategy.js';

export const EXPORT_FORMATS = ['jsonl', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  jsonl: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** What to export: a saved selection (with the terms at one checkpoint), or a filtered, ordered query. */
export type ExportSource =
  | { kind: 'selection'; selection: Selection; strategy: Strategy; checkpointId: number }
  | { kind: 'query'; prepared: PreparedQuery };

/** Rows per database round trip: large enough to amortise it, small enough to keep memory flat. */
export const EXPORT_BATCH_ROWS = 5_000;

const TERM_FIELDS = [...SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => t.field), 'correct'];

/** The parameter subset an export's kernel terms are over: the query's, or the selection's strategy's. */
function exportSubset(source: ExportSource): ParameterSubset {
  return source.kind === 'selection' ? source.strategy.subset : querySubset(source.prepared.query);
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
  const selection = await selectionById(ctx, selectionId);
  if (!selection) throw new NotFoundError('Selection', selectionId);
  const chosen = checkpointId ?? selection.checkpointIds.at(-1)!;
  const info = await checkpointInfo(ctx, chosen);
  if (info.datasetId !== selection.datasetId) throw new BadUserInputError(`Checkpoint ${chosen} is of a run on another dataset`, 'checkpoint');
  return { kind: 'selection', selection, strategy: storedStrategy(ctx, selection), checkpointId: chosen };
}

type Row = ExportRow;

/**
 * Reads every row of an export in batches and hands each batch to `onBatch`, which may take its
 * time (a slow client): no batch is read before the previous one was handed over, so memory stays
 * at one batch whatever the size. On PostgreSQL the rows come from a server-side cursor in one
 * transaction (one consistent snapshot); on the embedded PGlite, which is a single connection that a
 * long transaction would hold against every other request, from keyset pages, one statement each.
 * The rows are as the driver gives them (`formatter` adds className and subset).
 */
export async function readExport(
  ctx: CurationContext,
  source: ExportSource,
  onBatch: (rows: Row[]) => Promise<void>,
  batchRows = EXPORT_BATCH_ROWS,
  slots: ExportSlots | null = null,
): Promise<number> {
  const subset = exportSubset(source);
  if (ctx.db.kind === 'postgres') {
    const release = slots ? await slots.acquire() : null;
    try {
      return await ctx.db.transaction((tx) => exportThroughCursor(tx, source, subset, batchRows, onBatch));
    } finally {
      release?.();
    }
  }
  let total = 0;
  let after: Row | null = null;
  for (;;) {
    const rows: Row[] = await exportPage(ctx.db.sql, source, subset, after, batchRows);
    if (rows.length === 0) break;
    total += rows.length;
    after = rows.at(-1)!;
    await onBatch(rows);
    if (rows.length < batchRows) break;
  }
  return total;
}

/**
 * At most half the connection pool streams exports at once (each holds a connection for as long as
 * its client reads); the others wait their turn, so exports can never starve GraphQL of connections.
 * The /export routes make one for their server (`exportSlots`); an export made in process outside
 * the server (the CLI, one at a time) needs none.
 */
export class ExportSlots {
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

/** The export slots of a server: half its connection pool (at least one). */
export function exportSlots(config: Pick<Config, 'database'>): ExportSlots {
  const poolSize = config.database.kind === 'postgres' ? config.database.poolSize : 2;
  return new ExportSlots(Math.max(1, Math.floor(poolSize / 2)));
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

/** How a column's values are written: ints and floats (numbers), booleans, and text (quoted as text). */
type ColumnKind = 'number' | 'boolean' | 'text';

const TEXT_COLUMNS = new Set(['className', 'split', 'subset']);

/**
 * What the formatter needs beyond the rows, which come as the driver gives them: the class names
 * (a row's `className` is its label's) and the subset of its kernel terms (the `subset` column).
 */
export interface ExportContext {
  classNames: readonly string[];
  subset: string;
}

/**
 * Formats rows as JSONL or CSV. Written by hand: the values are numbers, booleans and a few short
 * strings (class name, split, subset), so the whole of CSV that matters is the quoting rule above.
 * Each column's writer is chosen once per export, from its kind, and a row is one string built
 * by concatenation: a million-row export is on the hot path, and building an object per row to
 * hand to JSON.stringify (or a regex test per number) cost more than reading the rows. A value of
 * another type than its column's (a driver that gives numbers as text) goes through the general
 * writers, so the output is the same as theirs.
 */
export function formatter(format: ExportFormat, columns: readonly string[], context: ExportContext = { classNames: [], subset: ALL_PARAMETERS }) {
  const value = columns.map((c): ((row: Row) => unknown) => {
    if (c === 'className') return (row) => context.classNames[Number(row.label)] ?? String(Number(row.label));
    if (c === 'subset') return () => context.subset;
    return (row) => row[c];
  });
  const kinds = columns.map((c): ColumnKind => (TEXT_COLUMNS.has(c) ? 'text' : c === 'correct' ? 'boolean' : 'number'));
  const csvCell = (v: unknown, kind: ColumnKind) => (v === null || v === undefined ? '' : kind !== 'text' && (typeof v === 'number' || typeof v === 'boolean') ? String(v) : csvField(v));
  const jsonCell = (v: unknown) =>
    v === null || v === undefined ? 'null' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'null') : typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  const keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);
  const n = columns.length;
  return {
    header: format === 'csv' ? `${columns.join(',')}\n` : '',
    rows(rows: readonly Row[]): string {
      let out = '';
      if (format === 'jsonl') {
        for (const row of rows) {
          let line = '';
          for (let i = 0; i < n; i++) line += keys[i]! + jsonCell(value[i]!(row));
          out += `${line}}\n`;
        }
      } else {
        for (const row of rows) {
          let line = csvCell(value[0]!(row), kinds[0]!);
          for (let i = 1; i < n; i++) line += `,${csvCell(value[i]!(row), kinds[i]!)}`;
          out += `${line}\n`;
        }
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
  slots: ExportSlots | null = null,
): Promise<number> {
  const columns = exportColumns(source);
  const dataset = await ctx.loaders.datasetById.load(source.kind === 'selection' ? source.selection.datasetId : source.prepared.info.datasetId);
  const f = formatter(format, columns, { classNames: dataset?.classNames ?? [], subset: exportSubset(source) });
  if (f.header) await write(f.header);
  return readExport(ctx, source, (rows) => write(f.rows(rows)), batchRows, slots);
}

