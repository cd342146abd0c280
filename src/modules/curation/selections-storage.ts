import type { Database } from '../../platform/db/database.js';
import { Prisma, type Selection } from '../../platform/db/generated/client.js';
import type { Sql } from '../../platform/db/sql.js';
import { param } from '../../platform/db/statement.js';
import { poolCte, selectionCte } from './query-sql.js';
import type { Cut, Strategy } from './strategy.js';

/**
 * The storage of saved selections (tables selection and selection_sample): every statement that
 * reads or writes them, and the statements that run a strategy (its pool and cut, assembled by
 * query-sql.ts). Readers take the database or the transaction they run in; writers take their
 * transaction. Rows come back as typed objects with numbers made numbers.
 */

/** One selected sample as stored, with the sample's index, label and split. */
export interface StoredSelectedSample {
  selectionId: number;
  rank: number;
  score: number;
  sampleId: number;
  index: number;
  label: number;
  split: string;
}

/** What a selection is saved with, besides its samples. */
export interface NewSelection {
  name: string;
  description: string | null;
  datasetId: number;
  runId: number;
  strategy: Strategy;
  provenance: unknown;
  classCounts: { label: number; count: number }[];
  poolSize: number;
  sampleCount: number;
  softwareVersion: string;
}

/** How a replay of a strategy compares with the saved samples. */
export interface ReplayComparison {
  count: number;
  missing: number;
  extra: number;
  moved: number;
}

/** Per checkpoint of a strategy (by position), who produced the term values of the pool. */
export interface PoolProducerCount {
  /** The checkpoint's position in the strategy. */
  i: number;
  kind: string | null;
  backend: string | null;
  version: string | null;
  count: number;
}

// named: selection.byId
export function findSelection(db: Database, id: number): Promise<Selection | null> {
  return db.prisma.selection.findUnique({ where: { id } });
}

// named: selection.byIdOrThrow
export function readSelection(db: Database, id: number): Promise<Selection> {
  return db.prisma.selection.findUniqueOrThrow({ where: { id } });
}

// named: selection.byDatasetAndName
export function findSelectionByName(db: Database, datasetId: number, name: string): Promise<Selection | null> {
  return db.prisma.selection.findUnique({ where: { datasetId_name: { datasetId, name } } });
}

/** Which selections a listing is about: all, or those of a dataset, a run or both. */
export interface SelectionWhere {
  datasetId?: number;
  runId?: number;
}

/** Selections in id order after `afterId` (undefined: from the first), at most `take`. */
// named: selection.page
export function selectionPage(db: Database, where: SelectionWhere, afterId: number | undefined, take: number): Promise<Selection[]> {
  return db.prisma.selection.findMany({
    where: { ...where, ...(typeof afterId === 'number' ? { id: { gt: afterId } } : {}) },
    orderBy: { id: 'asc' },
    take,
  });
}

// named: selection.count
export function countSelections(db: Database, where: SelectionWhere): Promise<number> {
  return db.prisma.selection.count({ where });
}

/** The dataset of a selection, or null when there is no such selection. */
export async function selectionDatasetId(sql: Sql, selectionId: number): Promise<number | null> {
  // named: selection.datasetOf
  const [row] = await sql.query<{ dataset_id: number }>('SELECT dataset_id FROM selection WHERE id = $1', [selectionId]);
  return row ? Number(row.dataset_id) : null;
}

/**
 * Every statement of a selection sees one snapshot, so the counts recorded match the rows saved.
 * The first statement of the transaction.
 */
export async function repeatableRead(tx: Sql, kind: Database['kind']): Promise<void> {
  // PGlite is one connection, already serial; PostgreSQL needs it said (first statement of the transaction).
  if (kind === 'postgres') await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
}

/** Pool sizes per label (every class of the dataset, zero where none). */
export async function poolClassCounts(sql: Sql, strategy: Strategy, classes: number): Promise<number[]> {
  const statement = Prisma.sql`WITH ${poolCte(strategy)} SELECT label, count(*)::int AS n FROM pool GROUP BY label`;
  // named: selection.poolClassCounts
  const rows = await sql.query<{ label: number; n: number }>(statement.text, statement.values);
  const counts = Array.from({ length: classes }, () => 0);
  for (const row of rows) {
    const label = Number(row.label);
    if (label >= 0 && label < classes) counts[label] = Number(row.n);
  }
  return counts;
}

/** Per label, how many samples the strategy's cut selects and their smallest and largest score. */
export async function selectedByLabel(sql: Sql, strategy: Strategy, cut: Cut): Promise<{ label: number; count: number; lo: number | null; hi: number | null }[]> {
  const statement = Prisma.sql`WITH ${poolCte(strategy)}, ${selectionCte(strategy, cut)} SELECT label, count(*)::int AS n, min(score) AS lo, max(score) AS hi FROM sel GROUP BY label`;
  // named: selection.summary
  const rows = await sql.query<{ label: number; n: number; lo: number | null; hi: number | null }>(statement.text, statement.values);
  return rows.map((r) => ({ label: Number(r.label), count: Number(r.n), lo: r.lo === null ? null : Number(r.lo), hi: r.hi === null ? null : Number(r.hi) }));
}

/**
 * Per checkpoint of the strategy (by position), who produced the term values of the pool:
 * one row per (position, producer), in position and producer order.
 */
export async function poolProducerCounts(sql: Sql, strategy: Strategy): Promise<PoolProducerCount[]> {
  // The positions are counted here, not given: text, like the pool's src_i columns they name.
  const values = Prisma.raw(strategy.checkpointIds.map((_, i) => `(${i}, src_${i})`).join(', '));
  const statement = Prisma.sql`WITH ${poolCte(strategy)} SELECT v.i, pr.kind::text AS kind, pr.backend, pr.version, count(*)::int AS n
     FROM pool CROSS JOIN LATERAL (VALUES ${values}) v(i, src) LEFT JOIN producer pr ON pr.id = v.src
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`;
  // named: selection.provenance
  const rows = await sql.query<{ i: number; kind: string | null; backend: string | null; version: string | null; n: number }>(statement.text, statement.values);
  return rows.map((r) => ({ i: Number(r.i), kind: r.kind, backend: r.backend, version: r.version, count: Number(r.n) }));
}

/** Stores a selection's row; its samples follow with `insertSelectedSamples` in the same transaction. Returns its id. */
export async function insertSelection(tx: Sql, s: NewSelection): Promise<number> {
  const { strategy } = s;
  // named: selection.insert
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO selection (name, description, dataset_id, run_id, method, term, direction, target_key, checkpoint_ids, weights,
       strategy, provenance, class_counts, pool_size, sample_count, software_version)
     VALUES ($1, $2, $3, $4, $5::selection_method, $6, $7, $8, $9::int[], $10::float8[], $11::jsonb, $12::jsonb, $13::jsonb, $14, $15, $16)
     RETURNING id`,
    [
      s.name,
      s.description,
      s.datasetId,
      s.runId,
      strategy.method,
      strategy.term,
      strategy.direction,
      strategy.targetKey,
      strategy.checkpointIds,
      strategy.weights,
      JSON.stringify(strategy),
      JSON.stringify(s.provenance),
      JSON.stringify(s.classCounts),
      s.poolSize,
      s.sampleCount,
      s.softwareVersion,
    ],
  );
  return Number(row!.id);
}

/** Runs the strategy with its cut and stores what it selects (rank, sample, score) under the selection. */
export async function insertSelectedSamples(tx: Sql, selectionId: number, strategy: Strategy, cut: Cut): Promise<void> {
  const statement = Prisma.sql`WITH ${poolCte(strategy)}, ${selectionCte(strategy, cut)} INSERT INTO selection_sample (selection_id, rank, sample_id, score) SELECT ${param(selectionId, 'int')}, rank, sample_id, score FROM sel`;
  // named: selection.insertSamples
  await tx.query(statement.text, statement.values);
}

/** Replays the strategy with its cut and compares, sample by sample, with the saved samples of the selection. */
export async function compareWithSaved(tx: Sql, selectionId: number, strategy: Strategy, cut: Cut): Promise<ReplayComparison> {
  const statement = Prisma.sql`WITH ${poolCte(strategy)}, ${selectionCte(strategy, cut)}, saved AS (SELECT rank, sample_id, score FROM selection_sample WHERE selection_id = ${param(selectionId, 'int')})
     SELECT count(sel.sample_id)::int AS count,
            count(*) FILTER (WHERE sel.sample_id IS NULL)::int AS missing,
            count(*) FILTER (WHERE saved.sample_id IS NULL)::int AS extra,
            count(*) FILTER (WHERE sel.rank <> saved.rank OR sel.score <> saved.score)::int AS moved
     FROM saved FULL JOIN sel ON sel.sample_id = saved.sample_id`;
  // named: selection.verify
  const [row] = await tx.query<{ count: number; missing: number; extra: number; moved: number }>(statement.text, statement.values);
  return { count: Number(row!.count), missing: Number(row!.missing), extra: Number(row!.extra), moved: Number(row!.moved) };
}

/** A selection's samples after `afterRank`, in rank order, at most `limit`. */
export async function selectedSamplePage(sql: Sql, selectionId: number, afterRank: number, limit: number): Promise<StoredSelectedSample[]> {
  // named: selection.samples
  const rows = await sql.query<{ rank: number; score: number; sample_id: number; index: number; label: number; split: string }>(
    `SELECT ss.rank, ss.score, ss.sample_id, s.index, s.label, s.split FROM selection_sample ss JOIN sample s ON s.id = ss.sample_id
     WHERE ss.selection_id = $1 AND ss.rank > $2 ORDER BY ss.rank LIMIT $3`,
    [selectionId, afterRank, limit],
  );
  return rows.map((r) => ({
    selectionId,
    rank: Number(r.rank),
    score: Number(r.score),
    sampleId: Number(r.sample_id),
    index: Number(r.index),
    label: Number(r.label),
    split: r.split,
  }));
}

/**
 * Deletes a selection (its samples go with it) and any kCross values measured against it.
 * Returns false when there was no such selection.
 */
export async function deleteSelectionRows(tx: Sql, id: number): Promise<boolean> {
  // named: selection.delete
  const rows = await tx.query<{ dataset_id: number }>('DELETE FROM selection WHERE id = $1 RETURNING dataset_id', [id]);
  if (!rows[0]) return false;
  // named: selection.deleteCrossMetrics (through the primary key: the dataset's checkpoints, then the target)
  await tx.query(
    `DELETE FROM sample_cross_metric WHERE target_key = $1
     AND checkpoint_id IN (SELECT c.id FROM checkpoint c JOIN run r ON r.id = c.run_id WHERE r.dataset_id = $2)`,
    [`selection:${id}`, Number(rows[0].dataset_id)],
  );
  return true;
}

