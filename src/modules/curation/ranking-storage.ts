import type { ArrayRows, Sql } from '../../platform/db/sql.js';
import { invariant } from '../../platform/errors.js';
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

/** The fields of a RankedSampleRow that come from the ranking statement, by its column names. */
const STATEMENT_FIELDS = ['sampleId', 'index', 'label', 'split', 'score', 'loss', 'correct', 'aNorm', 'hTrace', 'hMinEig', 'gNorm', 'kNorm', 'kTrace', 'kCross'] as const;
type StatementField = (typeof STATEMENT_FIELDS)[number];

/** A page as the driver gives it: each row an array of the statement's columns (`rankedRows` finishes it). */
export type RankedPage = ArrayRows;

/** What every row of a page shares: the checkpoint, its class names, the subset, and where each field is in a row's array. */
interface PageShape {
  info: CheckpointInfo;
  subset: string;
  at: Record<StatementField, number>;
}

/**
 * A row of a ranked page: the driver's array of the statement's values, read by field on demand.
 * One small object per row instead of the driver's object of every column plus a copy of it with
 * the ids made numbers and the checkpoint and class name added: a 1000-row page is on the hot path,
 * and a request reads a few of its 17 fields. The getters are on the prototype, the same for every
 * row, so compiled execution reads them as fast as own properties.
 */
class RankedRow implements RankedSampleRow {
  constructor(
    private readonly shape: PageShape,
    private readonly values: readonly unknown[],
  ) {}
  private v(field: StatementField): unknown {
    return this.values[this.shape.at[field]];
  }
  get checkpointId() {
    return this.shape.info.id;
  }
  get sampleId() {
    return Number(this.v('sampleId'));
  }
  get index() {
    return Number(this.v('index'));
  }
  get label() {
    return Number(this.v('label'));
  }
  get className() {
    const label = this.label;
    return this.shape.info.classNames[label] ?? String(label);
  }
  get split() {
    return this.v('split') as string;
  }
  get score() {
    return this.v('score') as number;
  }
  get loss() {
    return this.v('loss') as number | null;
  }
  get correct() {
    return this.v('correct') as boolean | null;
  }
  get aNorm() {
    return this.v('aNorm') as number | null;
  }
  get hTrace() {
    return this.v('hTrace') as number | null;
  }
  get hMinEig() {
    return this.v('hMinEig') as number | null;
  }
  get gNorm() {
    return this.v('gNorm') as number | null;
  }
  get kNorm() {
    return this.v('kNorm') as number | null;
  }
  get kTrace() {
    return this.v('kTrace') as number | null;
  }
  get kCross() {
    return this.v('kCross') as number | null;
  }
  get subset() {
    return this.shape.subset;
  }
}

/** A page from the database as RankedSampleRows (the checkpoint and class names added, the ids made numbers). */
export function rankedRows(info: CheckpointInfo, page: RankedPage, subset: string = ALL_PARAMETERS): RankedSampleRow[] {
  const at = {} as Record<StatementField, number>;
  for (const field of STATEMENT_FIELDS) {
    at[field] = page.columns.indexOf(field);
    invariant(at[field] >= 0, `the ranking statement has a column ${field}`);
  }
  const shape: PageShape = { info, subset, at };
  const out: RankedSampleRow[] = new Array(page.rows.length);
  for (let i = 0; i < page.rows.length; i++) out[i] = new RankedRow(shape, page.rows[i]!);
  return out;
}

/**
 * A page of a query: samples with their terms, in (order term, sample id) order, after a keyset
 * position, at most `limit` rows. Rows as the driver gives them, as arrays: `rankedRows` finishes
 * them once the checkpoint is known (the page may be read before it, side by side).
 */
export async function rankPage(sql: Sql, q: BoundQuery, after: { value: number; sampleId: number } | null, limit: number): Promise<RankedPage> {
  const statement = rankStatement(q, after, limit);
  // named: curation.rankPage
  return sql.queryArrays(statement.text, statement.values);
}

/** How many samples a query has (its totalCount). */
export async function rankCount(sql: Sql, q: BoundQuery): Promise<number> {
  const statement = countStatement(q);
  // named: curation.rankCount
  const [row] = await sql.query<{ n: number }>(statement.text, statement.values);
  return Number(row?.n ?? 0);
}
