import type { Database } from '../../platform/db/database.js';
import type { Dataset, Sample } from '../../platform/db/generated/client.js';
import { float32ToBytes } from '../../platform/float32.js';
import { encodeCopyLine } from '../../platform/db/copy-text.js';
import type { Tx } from '../../platform/db/sql.js';
import { and, empty, likeLiteral, param, raw, sql, type Statement } from '../../platform/db/statement.js';
import type { DatasetShape, NewSample, SampleColumns } from './samples.js';

/** A new dataset's definition, as createDataset stores it. */
export interface NewDataset {
  name: string;
  description: string | null;
  length: number;
  channels: number;
  classNames: string[];
  lengthResample: string | null;
}

/** Inserts a dataset inside the caller's transaction; returns its id. */
export async function insertDataset(tx: Tx, input: NewDataset): Promise<number> {
  // named: dataset.insert
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO dataset (name, description, length, channels, class_names, length_resample)
     VALUES ($1, $2, $3, $4, $5::text[], $6::resample_method) RETURNING id`,
    [input.name, input.description, input.length, input.channels, input.classNames, input.lengthResample],
  );
  return Number(row!.id);
}

/** The dataset with this id; throws when there is none (read right after its own insert commits). */
export function findDatasetOrThrow(db: Database, id: number): Promise<Dataset> {
  return db.prisma.dataset.findUniqueOrThrow({ where: { id } });
}

export function findDatasetByName(db: Database, name: string): Promise<Dataset | null> {
  return db.prisma.dataset.findUnique({ where: { name } });
}

/** Locks a dataset's row until the caller's transaction ends: serialises appends to one dataset. */
export async function lockDataset(tx: Tx, id: number): Promise<void> {
  // named: dataset.lockForUpdate
  await tx.query('SELECT id FROM dataset WHERE id = $1 FOR UPDATE', [id]);
}

/** Deletes a dataset (its samples and runs cascade); the number deleted, 0 or 1. */
export async function deleteDatasetById(db: Database, id: number): Promise<number> {
  const { count } = await db.prisma.dataset.deleteMany({ where: { id } });
  return count;
}

/** A stored sample as the idempotency check of createDataset compares it. */
export interface StoredSample {
  index: number;
  label: number;
  split: string;
  series: Uint8Array;
  originalLength: number | null;
}

/** Every sample of a dataset, in no particular order. */
export async function samplesOfDataset(db: Database, datasetId: number): Promise<StoredSample[]> {
  // named: sample.allOfDataset
  const rows = await db.sql.query<{ index: number; label: number; split: string; series: Uint8Array; original_length: number | null }>(
    'SELECT index, label, split, series, original_length FROM sample WHERE dataset_id = $1',
    [datasetId],
  );
  return rows.map((r) => ({ index: Number(r.index), label: Number(r.label), split: r.split, series: r.series, originalLength: r.original_length ?? null }));
}

/** The lowest of these indices already stored in the dataset, or null. */
export async function firstStoredIndex(tx: Tx, datasetId: number, indices: readonly number[]): Promise<number | null> {
  // named: sample.existingIndex
  const taken = await tx.query<{ index: number }>(
    'SELECT index FROM sample WHERE dataset_id = $1 AND index = ANY($2::int[]) ORDER BY index LIMIT 1',
    [datasetId, indices],
  );
  return taken.length > 0 ? Number(taken[0]!.index) : null;
}

/** Inserts validated samples with COPY, inside the caller's transaction. */
export async function insertSamples(tx: Tx, datasetId: number, samples: readonly NewSample[]): Promise<number> {
  if (samples.length === 0) return 0;
  const lines = (function* () {
    for (const s of samples) yield encodeCopyLine([datasetId, s.index, s.label, s.split, float32ToBytes(s.series), s.originalLength ?? null]);
  })();
  return tx.copyFrom('sample', ['dataset_id', 'index', 'label', 'split', 'series', 'original_length'], lines);
}

/**
 * Writes `n` validated rows of a columnar batch inside the caller's transaction: COPY into a
 * temporary table, then one INSERT … ON CONFLICT DO NOTHING. Returns how many were added, and when
 * some were not, the first row (batch order) whose stored sample differs from it (null: all identical).
 * The comparison runs after the insert, so two concurrent batches cannot both miss each other.
 */
export async function upsertSampleColumns(
  tx: Tx,
  dataset: DatasetShape,
  batch: SampleColumns,
  n: number,
): Promise<{ added: number; differs: { row: number; index: number } | null }> {
  const values = dataset.length * dataset.channels;
  const bytes = float32ToBytes(batch.series);
  const rowBytes = values * 4;
  const splitOf = typeof batch.splits === 'string' ? () => batch.splits as string : (i: number) => (batch.splits as readonly string[])[i]!;
  const originalOf = (i: number) => batch.originalLengths?.[i] ?? null;
  await tx.query(
    'CREATE TEMP TABLE sample_in (ord int NOT NULL, index int NOT NULL, label int NOT NULL, split text NOT NULL, series bytea NOT NULL, original_length int) ON COMMIT DROP',
  );
  await tx.copyFrom(
    'sample_in',
    ['ord', 'index', 'label', 'split', 'series', 'original_length'],
    (function* () {
      const rowsPerChunk = Math.max(1, Math.floor(1_048_576 / (rowBytes * 2 + 32)));
      for (let start = 0; start < n; start += rowsPerChunk) {
        let chunk = '';
        for (let i = start; i < Math.min(n, start + rowsPerChunk); i++) {
          chunk += encodeCopyLine([i, batch.indices[i]!, batch.labels[i]!, splitOf(i), bytes.subarray(i * rowBytes, (i + 1) * rowBytes), originalOf(i)]);
        }
        yield chunk;
      }
    })(),
  );
  // In index order, so that concurrent batches that overlap take their row locks in one order.
  // named: sample.upsert
  const [inserted] = await tx.query<{ n: number }>(
    `WITH added AS (
       INSERT INTO sample (dataset_id, index, label, split, series, original_length)
       SELECT $1, index, label, split, series, original_length FROM sample_in ORDER BY index
       ON CONFLICT (dataset_id, index) DO NOTHING
       RETURNING 1
     ) SELECT count(*)::int AS n FROM added`,
    [dataset.id],
  );
  const added = Number(inserted!.n);
  if (added < n) {
    // named: sample.differingExisting
    const differs = await tx.query<{ ord: number; index: number }>(
      `SELECT m.ord, m.index FROM sample_in m JOIN sample s ON s.dataset_id = $1 AND s.index = m.index
       WHERE (s.label, s.split, s.series, s.original_length) IS DISTINCT FROM (m.label, m.split, m.series, m.original_length)
       ORDER BY m.ord LIMIT 1`,
      [dataset.id],
    );
    if (differs[0]) return { added, differs: { row: Number(differs[0].ord), index: differs[0].index } };
  }
  return { added, differs: null };
}

/** A dataset row's columns under the Prisma field names, for plain-SQL reads of datasets. */
export const DATASET_COLUMNS = `id, name, description, length, channels, class_names AS "classNames", length_resample::text AS "lengthResample", created_at AS "createdAt"`;

/** Names containing `nameContains` literally, in any case; every dataset when it is empty. */
function nameFilter(nameContains: string | null | undefined): Statement[] {
  return nameContains ? [sql`name ILIKE ${param(`%${likeLiteral(nameContains)}%`, 'text')}`] : [];
}

/**
 * Up to `take` datasets with ids above `after`, by id; names containing `nameContains` (any case) only.
 * Plain SQL: the datasets list is what every dashboard reads first, and Prisma's per-call query
 * compilation cost more than the statement.
 */
export function datasetPage(db: Database, nameContains: string | null | undefined, after: number | null, take: number): Promise<Dataset[]> {
  const conditions = [...nameFilter(nameContains), ...(after === null ? [] : [sql`id > ${param(after, 'int')}`])];
  const where = conditions.length ? sql`WHERE ${and(conditions)}` : empty;
  const statement = sql`SELECT ${raw(DATASET_COLUMNS)} FROM dataset ${where} ORDER BY id LIMIT ${param(take, 'int')}`;
  return db.sql.query<Dataset>(statement.text, statement.values);
}

export async function countDatasets(db: Database, nameContains: string | null | undefined): Promise<number> {
  const conditions = nameFilter(nameContains);
  const statement = sql`SELECT count(*)::int AS n FROM dataset ${conditions.length ? sql`WHERE ${and(conditions)}` : empty}`;
  const [row] = await db.sql.query<{ n: number }>(statement.text, statement.values);
  return Number(row?.n ?? 0);
}

export interface SampleWhere {
  split?: string | null;
  label?: number | null;
  indexFrom?: number | null;
  indexTo?: number | null;
}

/** The conditions of `filter` on a dataset's samples: one definition for the page and its count. */
function sampleConditions(datasetId: number, f: SampleWhere): Statement[] {
  const conditions = [sql`dataset_id = ${param(datasetId, 'int')}`];
  if (f.split) conditions.push(sql`split = ${param(f.split, 'text')}`);
  if (f.label !== null && f.label !== undefined) conditions.push(sql`label = ${param(f.label, 'int')}`);
  if (f.indexFrom !== null && f.indexFrom !== undefined) conditions.push(sql`index >= ${param(f.indexFrom, 'int')}`);
  if (f.indexTo !== null && f.indexTo !== undefined) conditions.push(sql`index <= ${param(f.indexTo, 'int')}`);
  return conditions;
}

/** A sample row's columns under the Prisma field names, for plain-SQL reads of samples. */
export const SAMPLE_COLUMNS = `id, dataset_id AS "datasetId", index, label, split, series, original_length AS "originalLength"`;

/**
 * Up to `take` of a dataset's samples that match `filter`, in index order, with indices above `after`.
 * Plain SQL, not Prisma: Prisma's PostgreSQL adapter hands each bytea to its engine as an array
 * with one number per byte, which made a page of 50 series cost milliseconds of CPU for 50 kB.
 */
export function samplePage(db: Database, datasetId: number, f: SampleWhere, after: number | null, take: number): Promise<Sample[]> {
  const conditions = sampleConditions(datasetId, f);
  if (after !== null) conditions.push(sql`index > ${param(after, 'int')}`);
  const statement = sql`SELECT ${raw(SAMPLE_COLUMNS)} FROM sample WHERE ${and(conditions)} ORDER BY index LIMIT ${param(take, 'int')}`;
  return db.sql.query<Sample>(statement.text, statement.values);
}

export async function countSamples(db: Database, datasetId: number, f: SampleWhere): Promise<number> {
  const statement = sql`SELECT count(*)::int AS n FROM sample WHERE ${and(sampleConditions(datasetId, f))}`;
  const [row] = await db.sql.query<{ n: number }>(statement.text, statement.values);
  return Number(row?.n ?? 0);
}
