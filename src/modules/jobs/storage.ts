import { createHash } from 'node:crypto';
import type { PGlite } from '@electric-sql/pglite';
import type PgBoss from 'pg-boss';
import { and, join, param, raw, sql as statement, type Statement } from '../../platform/db/statement.js';
import type { Database } from '../../platform/db/database.js';
import type { ComputeJob, Prisma } from '../../platform/db/generated/client.js';
import { ALL_PARAMETERS, TERMS, isKernelTerm, type TermName } from '../../platform/values/term.js';
import type { Sql, Tx } from '../../platform/db/sql.js';
import { invariant } from '../../platform/errors.js';

/**
 * The rows of compute jobs (`compute_job`, `compute_job_chunk`): what a job covers, how it is cut
 * into chunks, and the one transaction in which a chunk's values and its "done" row commit.
 */
export type JobRow = ComputeJob;
export type JobStatus = JobRow['status'];

export const ACTIVE_STATUSES: readonly JobStatus[] = ['QUEUED', 'RUNNING'];

export function isActive(status: JobStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

/** Which samples of the run's dataset a job covers: all of them ({}), or those every given condition admits. */
export interface JobScope {
  sampleIds?: number[];
  splits?: string[];
  labels?: number[];
}

/** What a job computes, at which checkpoint, for which samples. */
export interface JobSpec {
  checkpointId: number;
  datasetId: number;
  /** Per-sample terms (sample_metric columns) that must be present when the job is done. */
  terms: TermName[];
  /** kCross against this target set must be present too. */
  targetKey: string | null;
  /** The parameter subset its kernel terms (kNorm, kTrace, kCross) are over: 'all' or a name of the model's. */
  subset: string;
  scope: JobScope;
  /** The API key whose request starts it (its concurrent-jobs limit counts it); null for in-process work. */
  requestedByKeyId?: number | null;
}

/** A scope in one normal form (sorted, without duplicates, empty conditions left out). */
export function normalScope(scope: JobScope): JobScope {
  const out: JobScope = {};
  if (scope.sampleIds?.length) out.sampleIds = [...new Set(scope.sampleIds)].sort((a, b) => a - b);
  if (scope.splits?.length) out.splits = [...new Set(scope.splits)].sort();
  if (scope.labels?.length) out.labels = [...new Set(scope.labels)].sort((a, b) => a - b);
  return out;
}

/**
 * Digest of what a job does, so a request for the same work joins the job already under way. The
 * subset is part of it only when it is not 'all', so jobs made before subsets existed keep their key.
 */
export function workKey(spec: Pick<JobSpec, 'terms' | 'targetKey' | 'subset' | 'scope'>): string {
  const terms = [...new Set(spec.terms)].sort();
  const work = { terms, targetKey: spec.targetKey, scope: normalScope(spec.scope), ...(spec.subset === ALL_PARAMETERS ? {} : { subset: spec.subset }) };
  return createHash('sha256').update(JSON.stringify(work)).digest('hex').slice(0, 32);
}

/** SQL conditions on `s` (sample) for a dataset and a scope. */
function scopeConditions(datasetId: number, scope: JobScope): Statement[] {
  const where = [statement`s.dataset_id = ${param(datasetId, 'int')}`];
  if (scope.sampleIds?.length) where.push(statement`s.id = ANY(${param(scope.sampleIds, 'int[]')})`);
  if (scope.splits?.length) where.push(statement`s.split = ANY(${param(scope.splits, 'text[]')})`);
  if (scope.labels?.length) where.push(statement`s.label = ANY(${param(scope.labels, 'int[]')})`);
  return where;
}

function columnOf(term: string): string {
  const spec = TERMS.find((t) => t.term === term);
  invariant(spec, `${term} is not a per-sample term`);
  return spec.column;
}

export async function loadJob(db: Database, id: number): Promise<JobRow | null> {
  // named: computeJob.byId
  return db.prisma.computeJob.findUnique({ where: { id } });
}

/** Which jobs a listing shows: of one checkpoint, in one status (either or both may be left out). */
export interface JobFilter {
  checkpointId?: number;
  status?: JobStatus | null;
}

function jobWhere(filter: JobFilter): Prisma.ComputeJobWhereInput {
  return {
    ...(filter.checkpointId !== undefined ? { checkpointId: filter.checkpointId } : {}),
    ...(filter.status ? { status: filter.status } : {}),
  };
}

/** Up to `take` jobs of the filter, newest (highest id) first, with ids below `beforeId` when given. */
export async function listJobRows(db: Database, filter: JobFilter, beforeId: number | null, take: number): Promise<JobRow[]> {
  // named: computeJob.page
  return db.prisma.computeJob.findMany({ where: { ...jobWhere(filter), ...(beforeId === null ? {} : { id: { lt: beforeId } }) }, orderBy: { id: 'desc' }, take });
}

/** How many jobs the filter admits. */
export async function countJobs(db: Database, filter: JobFilter): Promise<number> {
  // named: computeJob.count
  return db.prisma.computeJob.count({ where: jobWhere(filter) });
}

/** The first of `ids` that is not a sample of the dataset, or null when all are. */
export async function firstForeignSample(sql: Sql, datasetId: number, ids: readonly number[]): Promise<number | null> {
  // named: computeJob.foreignSamples
  const [bad] = await sql.query<{ id: number }>(
    `SELECT i.id FROM unnest($1::int[]) AS i(id) LEFT JOIN sample s ON s.id = i.id AND s.dataset_id = $2 WHERE s.id IS NULL LIMIT 1`,
    [ids, datasetId],
  );
  return bad ? Number(bad.id) : null;
}

/**
 * Creates the job (or finds the one under way for the same work) inside `tx`: takes the samples in
 * scope as they are now, cuts them into chunks of `chunkSize` consecutive ids, and records the first
 * id of each chunk. A scope without samples makes a job that is COMPLETED at once.
 */
export async function insertJob(tx: Tx, spec: JobSpec, chunkSize: number): Promise<{ id: number; created: false } | { id: number; created: true; createdAt: Date; totalChunks: number; totalSamples: number }> {
  const scope = normalScope(spec.scope);
  const key = workKey({ ...spec, scope });
  // Two requests for the same work at once make one job: the second waits here, then finds it.
  // named: computeJob.lock
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`compute_job:${spec.checkpointId}:${key}`]);
  // named: computeJob.findActive
  const [active] = await tx.query<{ id: number }>(
    `SELECT id FROM compute_job WHERE checkpoint_id = $1 AND work_key = $2 AND status IN ('QUEUED', 'RUNNING') ORDER BY id DESC LIMIT 1`,
    [spec.checkpointId, key],
  );
  if (active) return { id: Number(active.id), created: false };
  const size = param(chunkSize, 'int');
  const chunkStarts = statement`SELECT coalesce(array_agg(id ORDER BY id) FILTER (WHERE (rn - 1) % ${size} = 0), '{}')::int[] AS starts,
            count(*)::int AS total, coalesce(max(id), 0)::int AS last
     FROM (SELECT s.id, row_number() OVER (ORDER BY s.id) AS rn FROM sample s WHERE ${and(scopeConditions(spec.datasetId, scope))}) ids`;
  // named: computeJob.chunkStarts
  const [cut] = await tx.query<{ starts: number[]; total: number; last: number }>(chunkStarts.text, chunkStarts.values);
  invariant(cut, 'an aggregate returns one row');
  const starts = cut.starts.map(Number);
  // named: computeJob.insert
  const [row] = await tx.query<{ id: number; created_at: Date | string }>(
    `INSERT INTO compute_job (checkpoint_id, terms, target_key, subset, scope, work_key, chunk_size, chunk_starts, last_sample_id,
                              total_chunks, total_samples, status, finished_at, requested_by_key_id)
     VALUES ($1, $2::text[], $3, $11, $4::jsonb, $5, $6, $7::int[], $8, $9, $10,
             (CASE WHEN $9::int = 0 THEN 'COMPLETED' ELSE 'QUEUED' END)::compute_job_status, CASE WHEN $9::int = 0 THEN now() END, $12)
     RETURNING id, created_at`,
    [
      spec.checkpointId,
      [...new Set(spec.terms)].sort(),
      spec.targetKey,
      JSON.stringify(scope),
      key,
      chunkSize,
      starts,
      Number(cut.last),
      starts.length,
      Number(cut.total),
      spec.subset,
      spec.requestedByKeyId ?? null,
    ],
  );
  return { id: Number(row!.id), created: true, createdAt: new Date(row!.created_at), totalChunks: starts.length, totalSamples: Number(cut.total) };
}

/** Chunks of a job that have committed. */
export async function committedChunks(sql: Sql, jobId: number): Promise<Set<number>> {
  // named: computeJob.committedChunks
  const rows = await sql.query<{ chunk: number }>('SELECT chunk FROM compute_job_chunk WHERE job_id = $1', [jobId]);
  return new Set(rows.map((r) => Number(r.chunk)));
}

export async function chunkCommitted(sql: Sql, jobId: number, chunk: number): Promise<boolean> {
  // named: computeJob.chunkCommitted
  const rows = await sql.query('SELECT 1 FROM compute_job_chunk WHERE job_id = $1 AND chunk = $2', [jobId, chunk]);
  return rows.length > 0;
}

/** The samples of one chunk, in id order, with which of the job's values each still lacks. */
export async function chunkSamples(sql: Sql, job: JobRow, datasetId: number, chunk: number): Promise<{ id: number; lacksTerms: boolean; lacksCross: boolean }[]> {
  invariant(chunk >= 0 && chunk < job.totalChunks, `chunk ${chunk} of a job of ${job.totalChunks}`);
  const lo = job.chunkStarts[chunk]!;
  const next = job.chunkStarts[chunk + 1];
  const hi = next === undefined ? job.lastSampleId : next - 1;
  const c = () => param(job.checkpointId, 'int');
  const where = [...scopeConditions(datasetId, job.scope as JobScope), statement`s.id >= ${param(lo, 'int')}`, statement`s.id <= ${param(hi, 'int')}`];
  // Kernel terms over a named subset are in sample_subset_metric (k), every other term in sample_metric (m).
  // Aliases and columns are fixed text (the term list); every value is a bound parameter.
  const overSubset = (t: string) => job.subset !== ALL_PARAMETERS && isKernelTerm(t);
  const lacksTerms = raw(job.terms.length ? job.terms.map((t) => `${overSubset(t) ? 'k' : 'm'}.${columnOf(t)} IS NULL`).join(' OR ') : 'false');
  const joins: Statement[] = [statement`sample s LEFT JOIN sample_metric m ON m.checkpoint_id = ${c()} AND m.sample_id = s.id`];
  const subset = () => param(job.subset, 'text');
  if (job.terms.some(overSubset)) joins.push(statement`LEFT JOIN sample_subset_metric k ON k.checkpoint_id = ${c()} AND k.subset = ${subset()} AND k.sample_id = s.id`);
  let lacksCross = raw('false');
  if (job.targetKey !== null) {
    joins.push(statement`LEFT JOIN sample_cross_metric x ON x.checkpoint_id = ${c()} AND x.target_key = ${param(job.targetKey, 'text')} AND x.subset = ${subset()} AND x.sample_id = s.id`);
    lacksCross = raw('x.sample_id IS NULL');
  }
  const query = statement`SELECT s.id, (${lacksTerms}) AS lacks_terms, (${lacksCross}) AS lacks_cross FROM ${join(joins, ' ')} WHERE ${and(where)} ORDER BY s.id`;
  // named: computeJob.chunkSamples
  const rows = await sql.query<{ id: number; lacks_terms: boolean; lacks_cross: boolean }>(query.text, query.values);
  return rows.map((r) => ({ id: Number(r.id), lacksTerms: r.lacks_terms, lacksCross: r.lacks_cross }));
}

/** QUEUED → RUNNING when a worker first takes a chunk; true when this call changed it. */
export async function markRunning(sql: Sql, jobId: number, attempt: number): Promise<boolean> {
  // named: computeJob.markRunning
  const rows = await sql.query(
    `UPDATE compute_job SET status = 'RUNNING', started_at = coalesce(started_at, now()), updated_at = now()
     WHERE id = $1 AND attempts = $2 AND status = 'QUEUED' RETURNING id`,
    [jobId, attempt],
  );
  return rows.length > 0;
}

/** Keeps the last chunk error on an active job (shown while it retries; the reason if it fails). */
export async function recordChunkError(sql: Sql, jobId: number, attempt: number, message: string): Promise<void> {
  // named: computeJob.recordError
  await sql.query(`UPDATE compute_job SET error = $3, updated_at = now() WHERE id = $1 AND attempts = $2 AND status IN ('QUEUED', 'RUNNING')`, [jobId, attempt, message]);
}

/** Marks an active job FAILED with the reason; true when this call changed it. */
export async function failJob(sql: Sql, jobId: number, attempt: number, reason: string): Promise<boolean> {
  // named: computeJob.fail
  const rows = await sql.query(
    `UPDATE compute_job SET status = 'FAILED', error = $3, finished_at = now(), updated_at = now()
     WHERE id = $1 AND attempts = $2 AND status IN ('QUEUED', 'RUNNING') RETURNING id`,
    [jobId, attempt, reason],
  );
  return rows.length > 0;
}

/** Marks an active job CANCELLED; true when this call changed it. */
export async function cancelJobRow(sql: Sql, jobId: number): Promise<boolean> {
  // named: computeJob.cancel
  const rows = await sql.query(
    `UPDATE compute_job SET status = 'CANCELLED', finished_at = now(), updated_at = now()
     WHERE id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING id`,
    [jobId],
  );
  return rows.length > 0;
}

/**
 * Makes a FAILED or CANCELLED job QUEUED again under its next attempt, inside `tx`; returns the
 * chunks still to do (the committed ones stay done), or null when the job is not FAILED or CANCELLED.
 */
export async function reopenJob(tx: Tx, jobId: number): Promise<{ attempt: number; chunks: number[] } | null> {
  // named: computeJob.lockForRetry
  const [job] = await tx.query<{ status: JobStatus; total_chunks: number }>('SELECT status, total_chunks FROM compute_job WHERE id = $1 FOR UPDATE', [jobId]);
  if (!job || (job.status !== 'FAILED' && job.status !== 'CANCELLED')) return null;
  const done = await committedChunks(tx, jobId);
  const chunks = Array.from({ length: Number(job.total_chunks) }, (_, k) => k).filter((k) => !done.has(k));
  // named: computeJob.reopen
  const [row] = await tx.query<{ attempts: number }>(
    `UPDATE compute_job SET attempts = attempts + 1, error = NULL, updated_at = now(),
            status = (CASE WHEN $2::int = 0 THEN 'COMPLETED' ELSE 'QUEUED' END)::compute_job_status,
            finished_at = CASE WHEN $2::int = 0 THEN now() END
     WHERE id = $1 RETURNING attempts`,
    [jobId, chunks.length],
  );
  return { attempt: Number(row!.attempts), chunks };
}

export type ChunkOutcome = 'committed' | 'duplicate' | 'inactive';

/**
 * Commits one chunk: in ONE transaction, inserts its (job, chunk) row and, only if that row is new,
 * runs `write` (the chunk's values) and advances the job's progress, completing the job with its
 * last chunk. A chunk delivered twice (a retry after a crash, an expired chunk finished late) finds
 * its row and writes nothing; a job no longer active (cancelled, failed, retried under a newer
 * attempt) takes nothing either.
 */
export async function commitChunk(
  db: Database,
  c: { jobId: number; attempt: number; chunk: number; samples: number; computed: number; trunkHits?: number },
  write: (tx: Tx) => Promise<void>,
): Promise<ChunkOutcome> {
  return db.transaction(async (tx) => {
    // named: computeJob.lockForChunk
    const [job] = await tx.query<{ status: JobStatus; attempts: number }>('SELECT status, attempts FROM compute_job WHERE id = $1 FOR UPDATE', [c.jobId]);
    if (!job || !isActive(job.status) || Number(job.attempts) !== c.attempt) return 'inactive';
    // named: computeJob.insertChunk
    const inserted = await tx.query(
      'INSERT INTO compute_job_chunk (job_id, chunk, samples, computed) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING chunk',
      [c.jobId, c.chunk, c.samples, c.computed],
    );
    if (inserted.length === 0) return 'duplicate';
    await write(tx);
    // named: computeJob.advance
    await tx.query(
      `UPDATE compute_job SET
         done_chunks = done_chunks + 1, done_samples = done_samples + $2, computed_samples = computed_samples + $3, trunk_hits = trunk_hits + $4,
         status = (CASE WHEN done_chunks + 1 >= total_chunks THEN 'COMPLETED' ELSE 'RUNNING' END)::compute_job_status,
         finished_at = CASE WHEN done_chunks + 1 >= total_chunks THEN now() END,
         error = CASE WHEN done_chunks + 1 >= total_chunks THEN NULL ELSE error END,
         started_at = coalesce(started_at, now()), updated_at = now()
       WHERE id = $1`,
      [c.jobId, c.samples, c.computed, c.trunkHits ?? 0],
    );
    return 'committed';
  });
}

/**
 * pg-boss's database interface over one of ours (a transaction, or the database): the statements
 * pg-boss makes (sending chunks inside the transaction that makes their job) run on it.
 */
export function pgBossDb(sql: Sql): PgBoss.Db {
  return { executeSql: async (text, values) => ({ rows: (await sql.query(text, values ?? [])) as never[] }) };
}

/**
 * pg-boss's database interface over the embedded PGlite. PGlite's `query` takes one statement with
 * parameters; pg-boss's schema scripts (several statements, no parameters) go through `exec`, whose
 * last result is the one pg-boss reads.
 */
export function pglitePgBossDb(pglite: PGlite): PgBoss.Db {
  return {
    executeSql: async (text, values) => {
      if (values?.length) return (await pglite.query(text, values)) as { rows: never[] };
      return ((await pglite.exec(text)).at(-1) ?? { rows: [] }) as { rows: never[] };
    },
  };
}

/** The ids of a pg-boss queue's jobs that are active (taken by a worker and not finished). */
export async function activeQueueJobIds(db: Database, queue: string): Promise<string[]> {
  // pg-boss has no call that lists active jobs; its job table is documented (schema `pgboss`).
  // named: queue.orphanedChunks
  const rows = await db.sql.query<{ id: string }>(`SELECT id::text FROM pgboss.job WHERE name = $1 AND state = 'active'`, [queue]);
  return rows.map((r) => String(r.id));
}

/**
 * Deletes the compute jobs that finished (COMPLETED, FAILED, CANCELLED) before `cutoff`, their
 * chunk rows with them (ON DELETE CASCADE); how many. A job's computed values stay: they belong to
 * the checkpoint, not to the job that computed them.
 */
export async function deleteFinishedJobsBefore(db: Database, cutoff: Date): Promise<number> {
  // named: computeJob.deleteFinished
  const rows = await db.sql.query<{ id: number }>(
    `DELETE FROM compute_job WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND coalesce(finished_at, updated_at) < $1::timestamptz RETURNING id`,
    [cutoff.toISOString()],
  );
  return rows.length;
}
