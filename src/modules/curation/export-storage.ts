import { Prisma } from '../../platform/db/generated/client.js';
import type { ArrayRows, Sql, Tx } from '../../platform/db/sql.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import type { ExportSource } from './export.js';
import { param, type Statement } from '../../platform/db/statement.js';
import { rankStatement, termTable } from './query-sql.js';
import { SCALAR_TERM_SPECS } from './term-columns.js';

/**
 * The storage of exports: the statement of an export (a saved selection's samples with their terms
 * at one checkpoint; a query's is query-sql.ts's `rankStatement` without a limit), read a page at a
 * time by keyset or through a server-side cursor. Rows come as arrays of PostgreSQL's own text for
 * each value (`queryArrays` with `text`), in the order of the statement's columns: the formatter
 * (export.ts) writes that text as it is wherever it is what the parsed value would print as, so a
 * million-row export neither parses ten million numbers nor prints them again, nor builds an object
 * per row. `subset` is the parameter subset of the export's kernel terms (export.ts's `exportSubset`).
 */

/** A batch of an export: the statement's column names, and rows of text values (null for NULL). */
export interface ExportBatch {
  columns: string[];
  rows: (string | null)[][];
}

/** Where the next keyset page starts: the last row of the previous one (its score and sample id, or its rank). */
export type ExportAfter = { score: number; sampleId: number } | { rank: number };

/** The keyset position after the last row of a batch. */
export function exportAfter(source: ExportSource, batch: ExportBatch): ExportAfter {
  const last = batch.rows.at(-1)!;
  const at = (name: string) => last[batch.columns.indexOf(name)]!;
  // As the driver parses them (parseFloat, parseInt): the bound value is the same number.
  return source.kind === 'query' ? { score: parseFloat(at('score')), sampleId: parseInt(at('sampleId'), 10) } : { rank: parseInt(at('rank'), 10) };
}

/** A statement for the rows after a keyset position (`after` null: from the start), at most `limit` (null: all). */
function exportStatement(source: ExportSource, subset: string, after: ExportAfter | null, limit: number | null): Statement {
  if (source.kind === 'query') {
    return rankStatement(source.prepared, after && 'score' in after ? { value: after.score, sampleId: after.sampleId } : null, limit);
  }
  const { selection, checkpointId } = source;
  const { sql, raw, empty } = Prisma;
  const c = param(checkpointId, 'int');
  const s_ = param(subset, 'text');
  // Kernel terms over a named subset come from sample_subset_metric (k), the rest from sample_metric (m).
  // Column names come from the fixed term list only.
  const metric = raw(SCALAR_TERM_SPECS.filter((t) => !t.cross).map((t) => `${termTable(t.term, subset) === 'subset' ? 'k' : 'm'}.${t.column} AS "${t.field}"`).join(', '));
  const cross = selection.targetKey !== null;
  return sql`SELECT ss.rank, ss.score, ss.sample_id AS "sampleId", s.index, s.label, s.split, ${metric}, m.correct AS "correct"
      ${cross ? raw(', x.k_cross AS "kCross"') : empty}
    FROM selection_sample ss JOIN sample s ON s.id = ss.sample_id
    LEFT JOIN sample_metric m ON m.checkpoint_id = ${c} AND m.sample_id = ss.sample_id
    ${subset === ALL_PARAMETERS ? empty : sql`LEFT JOIN sample_subset_metric k ON k.checkpoint_id = ${c} AND k.subset = ${s_} AND k.sample_id = ss.sample_id`}
    ${cross ? sql`LEFT JOIN sample_cross_metric x ON x.checkpoint_id = ${c} AND x.target_key = ${param(selection.targetKey, 'text')} AND x.subset = ${s_} AND x.sample_id = ss.sample_id` : empty}
    WHERE ss.selection_id = ${param(selection.id, 'int')}${after && 'rank' in after ? sql` AND ss.rank > ${param(after.rank, 'int')}` : empty}
    ORDER BY ss.rank${limit === null ? empty : sql` LIMIT ${param(limit, 'int')}`}`;
}

/** The rows of an export after a keyset position (`after`: from the last row of the previous page), at most `limit`. */
export async function exportPage(sql: Sql, source: ExportSource, subset: string, after: ExportAfter | null, limit: number): Promise<ExportBatch> {
  const statement = exportStatement(source, subset, after, limit);
  // named: export.page
  return (await sql.queryArrays(statement.text, statement.values, { text: true })) as ArrayRows as ExportBatch;
}

/**
 * Reads every row of an export through a server-side cursor in `tx` (one consistent snapshot),
 * `batchRows` at a time, handing each batch to `onBatch` one after the other. The next batch is
 * asked for before the current one is handed over, so the database produces it while this process
 * formats and sends the current one (two batches in memory at most). Returns how many rows there were.
 */
export async function exportThroughCursor(
  tx: Tx,
  source: ExportSource,
  subset: string,
  batchRows: number,
  onBatch: (batch: ExportBatch) => Promise<void>,
): Promise<number> {
  let total = 0;
  const statement = exportStatement(source, subset, null, null);
  // Every row will be read: plan for the whole result, not for the first 10% (the cursor default,
  // which picks nested loops that are quadratic when the statistics are behind a bulk load).
  await tx.query('SET LOCAL cursor_tuple_fraction = 1');
  // named: export.cursor
  await tx.query(`DECLARE tangent_export NO SCROLL CURSOR FOR ${statement.text}`, statement.values);
  const fetch = () => tx.queryArrays(`FETCH FORWARD ${batchRows} FROM tangent_export`, [], { text: true }) as Promise<ExportBatch>;
  let next = fetch();
  for (;;) {
    const batch = await next;
    const n = batch.rows.length;
    if (n === 0) break;
    total += n;
    const more = n === batchRows;
    if (more) {
      next = fetch();
      // Settled later (or not at all when the client has gone: the transaction is rolled back then).
      next.catch(() => undefined);
    }
    await onBatch(batch);
    if (!more) break;
  }
  await tx.query('CLOSE tangent_export');
  return total;
}
