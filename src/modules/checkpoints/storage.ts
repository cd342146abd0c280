import type { Database } from '../../platform/db/database.js';
import type { Checkpoint } from '../../platform/db/generated/client.js';
import type { Tx } from '../../platform/db/sql.js';
import { readWeights, storeWeights, type WeightSpec } from './weight-storage.js';
import { checkpointColumns } from './columns.js';

/** A checkpoint row's columns under the Prisma field names, for plain-SQL reads of checkpoints. */
export const CHECKPOINT_COLUMNS = checkpointColumns();

/** A new checkpoint and its weights, as createCheckpoint stores them. */
export interface NewCheckpoint {
  runId: number;
  step: number;
  epoch: number | null;
  learningRate: number | null;
  weightBytes: number;
  weightSha256: string;
  /** The weight specs, stored as JSON. */
  specs: unknown;
  weightData: Buffer;
  /** SHA-256 of each layer's weights, by layer name (layer-hashes.ts). */
  layerHashes: Record<string, string>;
}

/**
 * Inserts a checkpoint and its weights inside the caller's transaction; returns the checkpoint's id.
 * Raw SQL rather than Prisma: the embedded adapter cannot bind bytea parameters from Prisma.
 */
export async function insertCheckpoint(tx: Tx, checkpoint: NewCheckpoint): Promise<number> {
  // named: checkpoint.insert
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO checkpoint (run_id, step, epoch, learning_rate, weight_bytes, weight_sha256)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [checkpoint.runId, checkpoint.step, checkpoint.epoch, checkpoint.learningRate, checkpoint.weightBytes, checkpoint.weightSha256],
  );
  const checkpointId = Number(row!.id);
  await storeWeights(tx, checkpointId, { specs: checkpoint.specs as WeightSpec[], data: checkpoint.weightData, layerHashes: checkpoint.layerHashes });
  return checkpointId;
}

/** A checkpoint's per-layer hashes; null when they were never computed (stored before they were kept), undefined when it has no weights. */
export async function findLayerHashes(db: Database, checkpointId: number): Promise<Record<string, string> | null | undefined> {
  // named: checkpointWeights.layerHashes
  const [row] = await db.sql.query<{ layer_hashes: Record<string, string> | null }>('SELECT layer_hashes FROM checkpoint_weights WHERE checkpoint_id = $1', [checkpointId]);
  return row ? row.layer_hashes : undefined;
}

/** A checkpoint's weight specs and bytes (to hash them), or null. */
export async function findWeights(db: Database, checkpointId: number): Promise<{ specs: unknown; data: Uint8Array } | null> {
  return readWeights(db.sql, checkpointId);
}

/** Stores the per-layer hashes of a checkpoint stored before they were kept (a no-op when a concurrent backfill wrote them first). */
export async function backfillLayerHashes(db: Database, checkpointId: number, hashes: Record<string, string>): Promise<void> {
  // named: checkpointWeights.backfillLayerHashes
  await db.sql.query('UPDATE checkpoint_weights SET layer_hashes = $2::jsonb WHERE checkpoint_id = $1 AND layer_hashes IS NULL', [checkpointId, JSON.stringify(hashes)]);
}

/** The checkpoint with this id; throws when there is none (read right after its own insert commits). */
export function findCheckpointOrThrow(db: Database, id: number): Promise<Checkpoint> {
  return db.prisma.checkpoint.findUniqueOrThrow({ where: { id } });
}

/** A run's checkpoint at a step with its weights' specs (not their bytes), or null. */
export function findCheckpointAtStep(db: Database, runId: number, step: number): Promise<(Checkpoint & { weights: { specs: unknown } | null }) | null> {
  return db.prisma.checkpoint.findUnique({ where: { runId_step: { runId, step } }, include: { weights: { select: { specs: true } } } });
}

/** Deletes a checkpoint (its weights and metrics cascade). */
export async function deleteCheckpointById(db: Database, id: number): Promise<void> {
  await db.prisma.checkpoint.deleteMany({ where: { id } });
}

/**
 * Up to `take` of a run's checkpoints in step order, with steps above `after`. Plain SQL (rows in the
 * Prisma shape): a run's checkpoints are read with nearly every run, and Prisma's per-call query
 * compilation cost more than the statement itself.
 */
export function checkpointPage(db: Database, runId: number, after: number | null, take: number): Promise<Checkpoint[]> {
  return after !== null
    ? db.sql.query<Checkpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE run_id = $1 AND step > $2 ORDER BY step LIMIT $3`, [runId, after, take])
    : db.sql.query<Checkpoint>(`SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE run_id = $1 ORDER BY step LIMIT $2`, [runId, take]);
}

