import type { Sql } from '../../platform/db/sql.js';
import { ALL_PARAMETERS } from '../../platform/values/term.js';
import type { BoundQuery } from './query.js';
import { countStatement, rankStatement } from './query-sql.js';

/**
 * The storage of curation queries at a checkpoint: the ranked page and its count (statements
 * assembled by query-sql.ts, which bench/query-run.ts also replays as they are). Each function takes the handle it runs on.
 */

/** A checkpoint with what curation queries need of its run and dataset (the checkpoints module's `checkpointContext` reads it). */
export interface CheckpointInfo {
  id: number;
  runId: number;
  step: number;
  learningRate: number | null;
  datasetId: number;
  classNames: string[];
}

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

/** A row of a ranking statement as the driver gives it (`toRankedRows` makes it a RankedSampleRow). */
export type RankedRawRow = Omit<RankedSampleRow, 'checkpointId' | 'className' | 'subset'>;

/**
 * Rows from the database into RankedSampleRows: one object literal of a fixed shape per row, with
 * the ids made numbers (some drivers give strings) and the checkpoint and class name added. Not a
 * spread, and not the driver's row objects changed in place (adding properties to those costs ten
 * times as much): a 1000-row page is on the hot path.
 */
export function toRankedRows(info: CheckpointInfo, rows: readonly RankedRawRow[], subset: string = ALL_PARAMETERS): RankedSampleRow[] {
  const out: RankedSampleRow[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    const label = Number(r.label);
    out[i] = {
      checkpointId: info.id,
      sampleId: Number(r.sampleId),
      index: Number(r.index),
      label,
      className: info.classNames[label] ?? String(label),
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

/**
 * A page of a query: samples with their terms, in (order term, sample id) order, after a keyset
 * position, at most `limit` rows. Rows as the driver gives them: `toRankedRows` finishes them once
 * the checkpoint is known (the page may be read before it, side by side).
 */
export async function rankPage(sql: Sql, q: BoundQuery, after: { value: number; sampleId: number } | null, limit: number): Promise<RankedRawRow[]> {
  const statement = rankStatement(q, after, limit);
  // named: curation.rankPage
  return sql.query<RankedRawRow>(statement.text, statement.values);
}

/** How many samples a query has (its totalCount). */
export async function rankCount(sql: Sql, q: BoundQuery): Promise<number> {
  const statement = countStatement(q);
  // named: curation.rankCount
  const [row] = await sql.query<{ n: number }>(statement.text, statement.values);
  return Number(row?.n ?? 0);
}
