import type { Selection } from '../../platform/db/generated/client.js';
import { SCALAR_TERM_SPECS } from './term-columns.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, invariant, NotFoundError } from '../../platform/errors.js';
import type { Config } from '../../platform/config.js';
import { checkpointInfo, type CurationContext } from './checkpoint-info.js';
import { exportAfter, exportPage, exportThroughCursor, type ExportAfter, type ExportBatch } from './export-storage.js';
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

export type { ExportBatch };

/**
 * Reads every row of an export in batches and hands each batch to `onBatch`, which may take its
 * time (a slow client): no batch is handed over before the previous one was, so memory stays at a
 * batch or two whatever the size. On PostgreSQL the rows come from a server-side cursor in one
 * transaction (one consistent snapshot); on the embedded PGlite, which is a single connection that a
 * long transaction would hold against every other request, from keyset pages, one statement each.
 * The rows are arrays of the database's text for each value (`formatter` writes them).
 */
export async function readExport(
  ctx: CurationContext,
  source: ExportSource,
  onBatch: (batch: ExportBatch) => Promise<void>,
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
  let after: ExportAfter | null = null;
  for (;;) {
    const batch = await exportPage(ctx.db.sql, source, subset, after, batchRows);
    const n = batch.rows.length;
    if (n === 0) break;
    total += n;
    after = exportAfter(source, batch);
    await onBatch(batch);
    if (n < batchRows) break;
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

/** How a column's values are written: integers, floats, booleans, text (quoted as text), and the two derived columns. */
const enum Kind {
  Int,
  Float,
  Boolean,
  Text,
  ClassName,
  Subset,
}

const INT_COLUMNS = new Set(['rank', 'sampleId', 'index', 'label']);
const TEXT_COLUMNS = new Set(['split']);

/**
 * What the formatter needs beyond the rows: the class names (a row's `className` is its label's)
 * and the subset of its kernel terms (the `subset` column).
 */
export interface ExportContext {
  classNames: readonly string[];
  subset: string;
}

/**
 * A float as PostgreSQL writes it (float4out, float8out), written as JavaScript prints the number
 * the driver parses it to (`String(parseFloat(text))`, what exports have always written). Most
 * texts are that already and go out as they are: plain decimal notation (no exponent, no NaN or
 * Infinity, not -0, no trailing zero after the point) of at most 15 characters, so at most 15
 * significant digits, which a double holds exactly and prints back the same, and at least 1e-6
 * in size (below, JavaScript switches to an exponent). The rest are parsed and printed.
 * `null`: not finite (JSON has no NaN or Infinity).
 */
function floatText(text: string): string | null {
  const n = text.length;
  if (n <= 15) {
    const c0 = text.charCodeAt(0);
    const first = c0 === 45 /* - */ ? text.charCodeAt(1) : c0;
    if (
      first >= 48 &&
      first <= 57 &&
      text.indexOf('e') === -1 &&
      text !== '-0' &&
      !(text.indexOf('.') !== -1 && text.charCodeAt(n - 1) === 48) &&
      !text.startsWith(c0 === 45 ? '-0.000000' : '0.000000')
    ) {
      return text;
    }
  }
  const value = parseFloat(text);
  return Number.isFinite(value) ? String(value) : null;
}

/**
 * Formats rows (arrays of the database's text for each value, in the order of `names`, the
 * statement's columns) as the lines of JSONL or CSV with the columns `columns`. Written by hand:
 * the values are numbers, booleans and a few short strings (class name, split, subset), so the
 * whole of CSV that matters is the quoting rule above. The writer of each column is chosen once per
 * export, from its kind; integers go out as the database wrote them, floats mostly too
 * (`floatText`), booleans as true/false, and a text's cell is remembered per distinct value (splits
 * and class names are few). A million-row export is on the hot path: parsing every value and
 * printing it again, or an object per row for JSON.stringify, cost more than reading the rows.
 * The output is exactly what writing the parsed values (numbers, booleans, strings) gives.
 */
export function formatter(format: ExportFormat, columns: readonly string[], context: ExportContext = { classNames: [], subset: ALL_PARAMETERS }) {
  const csv = format === 'csv';
  const kinds = columns.map((c): Kind =>
    c === 'className' ? Kind.ClassName : c === 'subset' ? Kind.Subset : INT_COLUMNS.has(c) ? Kind.Int : TEXT_COLUMNS.has(c) ? Kind.Text : c === 'correct' ? Kind.Boolean : Kind.Float,
  );
  const textCell = (text: string) => (csv ? csvField(text) : JSON.stringify(text));
  const nullCell = csv ? '' : 'null';
  const subsetCell = textCell(context.subset);
  /** A class name's cell by the label's text; labels without a name are written as their number (as text). */
  const classCells = new Map<string, string>();
  context.classNames.forEach((name, label) => classCells.set(String(label), textCell(name ?? String(label))));
  /** Cells of text values already seen (splits are few; bounded all the same). */
  const textCells = new Map<string, string>();
  const heads = columns.map((c, i) => (csv ? (i === 0 ? '' : ',') : `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`));
  const end = csv ? '\n' : '}\n';
  const n = columns.length;
  return {
    header: csv ? `${columns.join(',')}\n` : '',
    /** The lines of a batch; `names` are the statement's columns, in the order of each row's values. */
    rows(batch: ExportBatch): string {
      const at = columns.map((c) => batch.columns.indexOf(c === 'className' ? 'label' : c));
      for (let i = 0; i < n; i++) invariant(kinds[i] === Kind.Subset || at[i]! >= 0, `the export statement has a column for ${columns[i]}`);
      let out = '';
      for (const row of batch.rows) {
        let line = '';
        for (let i = 0; i < n; i++) {
          const kind = kinds[i]!;
          const text = kind === Kind.Subset ? null : row[at[i]!]!;
          let cell: string;
          if (kind === Kind.Subset) cell = subsetCell;
          else if (text === null) cell = nullCell;
          else if (kind === Kind.Int) cell = text;
          else if (kind === Kind.Float) cell = floatText(text) ?? (csv ? String(parseFloat(text)) : 'null');
          else if (kind === Kind.Boolean) cell = text === 't' ? 'true' : 'false';
          else if (kind === Kind.ClassName) cell = classCells.get(text) ?? textCell(text);
          else {
            let known = textCells.get(text);
            if (known === undefined) {
              known = textCell(text);
              if (textCells.size < 1000) textCells.set(text, known);
            }
            cell = known;
          }
          line += heads[i]! + cell;
        }
        out += line + end;
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
  return readExport(ctx, source, (batch) => write(f.rows(batch)), batchRows, slots);
}

