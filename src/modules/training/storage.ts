import type { ModelSource } from '../../compute/index.js';
import type { Database } from '../../platform/db/database.js';
import type { Run, TrainJob } from '../../platform/db/generated/client.js';
import type { Tx } from '../../platform/db/sql.js';
import { readWeights, storeWeights, type StoredWeightSpec as WeightSpec } from '../checkpoints/service.js';
import type { TrainOptimizer } from './train-loop.js';

/**
 * The rows of runs that Tangent trains itself: `train_job` (one per trained run: its spec, its
 * samples, the attempt that has it and its progress), the run's status as a training moves it, the
 * checkpoints and weights a training stores, and what a training reads (its model, the weights it
 * starts from, its samples). The metrics of a point go through the terms module.
 */

/** How a run is trained, as stored in `train_job.spec` (and echoed in the run's config). */
export interface TrainSpec {
  optimizer: TrainOptimizer;
  learningRate: number;
  /** AdamW's decoupled weight decay; null for the other optimizers. */
  weightDecay: number | null;
  epochs: number;
  batchSize: number;
  seed: number;
  split: string;
  trainFraction: number;
  analyzeEvery: number;
  trackEverySteps: number | null;
  trackSamples: number;
  fromCheckpointId: number | null;
  /**
   * What training moves: 'full' (every trainable weight), or a named parameter subset of the model
   * ('head'; 'adapter_head' for Mantis), the rest frozen. Absent in trainings stored before it: 'full'.
   */
  fineTuning?: FineTuning;
  /** Analysis every k optimizer steps instead of every `analyzeEvery` epochs; absent or null: by epochs. */
  analyzeEverySteps?: number | null;
}

/** Mantis's fine-tuning modes (MantisTrainer's `fine_tuning_type`); 'head' works for any model whose logits layer has weights. */
export type FineTuning = 'full' | 'head' | 'adapter_head';

// ---------------------------------------------------------------------------------------------
// Starting a training (trainRun)

/** The ids of a split's samples, in dataset order. */
export async function splitSampleIds(db: Database, datasetId: number, split: string): Promise<number[]> {
  // named: train.splitSamples
  const rows = await db.sql.query<{ id: number }>('SELECT id FROM sample WHERE dataset_id = $1 AND split = $2 ORDER BY index', [datasetId, split]);
  return rows.map((r) => Number(r.id));
}

/** Inserts a run that Tangent trains (PENDING); its id. */
export async function insertTrainedRun(
  tx: Tx,
  run: { name: string; modelId: number; datasetId: number; config: object; idempotencyKey: string | null },
): Promise<number> {
  // named: train.insertRun
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO run (name, model_id, dataset_id, config, status, updated_at, idempotency_key) VALUES ($1, $2, $3, $4::jsonb, 'PENDING', now(), $5) RETURNING id`,
    [run.name, run.modelId, run.datasetId, JSON.stringify(run.config), run.idempotencyKey],
  );
  return Number(row!.id);
}

/** Inserts the `train_job` row of a run that Tangent trains. */
export async function insertTrainJob(
  tx: Tx,
  job: { runId: number; spec: TrainSpec; sampleIds: number[]; trackedIds: number[]; stepsPerEpoch: number; totalSteps: number; totalPoints: number },
): Promise<void> {
  // named: train.insertJob
  await tx.query(
    `INSERT INTO train_job (run_id, spec, sample_ids, tracked_ids, steps_per_epoch, total_steps, total_points)
     VALUES ($1, $2::jsonb, $3::int[], $4::int[], $5, $6, $7)`,
    [job.runId, JSON.stringify(job.spec), job.sampleIds, job.trackedIds, job.stepsPerEpoch, job.totalSteps, job.totalPoints],
  );
}

/** The run, as Prisma reads it (once its transaction committed). */
export function trainedRun(db: Database, runId: number): Promise<Run> {
  return db.prisma.run.findUniqueOrThrow({ where: { id: runId } });
}

/** The `train_job` row of a run, or null for a run that a client logs. */
export function trainJobOfRun(db: Database, runId: number): Promise<TrainJob | null> {
  // Prisma batches same-tick findUnique calls, so a page of runs makes one query.
  return db.prisma.trainJob.findUnique({ where: { runId } });
}

// ---------------------------------------------------------------------------------------------
// Working a training (train-worker.ts)

/** The run's status as the training sees it; null when the run is gone. */
export async function trainState(db: Database, runId: number): Promise<{ status: string; attempts: number } | null> {
  // named: train.state
  const [row] = await db.sql.query<{ status: string; attempts: number | null }>(
    'SELECT r.status::text AS status, t.attempts FROM run r LEFT JOIN train_job t ON t.run_id = r.id WHERE r.id = $1',
    [runId],
  );
  return row ? { status: row.status, attempts: Number(row.attempts ?? 0) } : null;
}

/** What a worker claims when it (re)starts a training. */
export interface ClaimedTrainJob {
  attempt: number;
  spec: TrainSpec;
  sampleIds: number[];
  trackedIds: number[];
}

/**
 * Takes the run's `train_job` under the next attempt, its progress reset, when the run is PENDING or
 * RUNNING; null otherwise (or when the run is gone).
 */
export async function claimTrainJob(tx: Tx, runId: number): Promise<ClaimedTrainJob | null> {
  // named: train.claim
  const [row] = await tx.query<{ attempts: number; spec: TrainSpec; sample_ids: number[]; tracked_ids: number[] }>(
    `UPDATE train_job t SET attempts = t.attempts + 1, started_at = coalesce(t.started_at, now()), finished_at = NULL,
            epochs_done = 0, steps_done = 0, points_done = 0, epoch_loss = NULL, epoch_accuracy = NULL, updated_at = now()
     FROM run r WHERE t.run_id = $1 AND r.id = t.run_id AND r.status IN ('PENDING', 'RUNNING')
     RETURNING t.attempts, t.spec, t.sample_ids, t.tracked_ids`,
    [runId],
  );
  if (!row) return null;
  return { attempt: Number(row.attempts), spec: row.spec, sampleIds: row.sample_ids.map(Number), trackedIds: row.tracked_ids.map(Number) };
}

/** PENDING → RUNNING (a run already RUNNING stays as it is). */
export async function markRunRunning(tx: Tx, runId: number): Promise<void> {
  // named: train.markRunning
  await tx.query(`UPDATE run SET status = 'RUNNING', updated_at = now() WHERE id = $1 AND status = 'PENDING'`, [runId]);
}

/** The model a run trains, with its data set. */
export interface TrainModelRow {
  datasetId: number;
  format: 'BUILTIN' | 'TFJS_LAYERS';
  architecture: string | null;
  config: Record<string, unknown> | null;
  topology: object | null;
  inputLength: number;
  channels: number;
  numClasses: number;
}

/** The model and data set of run `runId`; null when the run is gone. */
export async function trainModel(db: Database, runId: number): Promise<TrainModelRow | null> {
  // named: train.model
  const [row] = await db.sql.query<{
    dataset_id: number;
    format: 'BUILTIN' | 'TFJS_LAYERS';
    architecture: string | null;
    config: Record<string, unknown> | null;
    topology: object | null;
    input_length: number;
    channels: number;
    num_classes: number;
  }>(
    `SELECT r.dataset_id, m.format::text AS format, m.architecture, m.config, m.topology, m.input_length, m.channels, m.num_classes
     FROM run r JOIN model m ON m.id = r.model_id WHERE r.id = $1`,
    [runId],
  );
  if (!row) return null;
  return {
    datasetId: Number(row.dataset_id),
    format: row.format,
    architecture: row.architecture,
    config: row.config,
    topology: row.topology,
    inputLength: Number(row.input_length),
    channels: Number(row.channels),
    numClasses: Number(row.num_classes),
  };
}

/** The stored weights of a checkpoint (a training's starting point); null when it is gone. */
export async function startWeights(db: Database, checkpointId: number): Promise<{ specs: ModelSource['weightSpecs']; data: Uint8Array } | null> {
  const weights = await readWeights(db.sql, checkpointId);
  return weights ? { specs: weights.specs as ModelSource['weightSpecs'], data: weights.data } : null;
}

/** The samples of `ids` that still exist in the data set (in no particular order). */
export async function trainSamples(db: Database, datasetId: number, ids: readonly number[]): Promise<{ id: number; label: number; series: Uint8Array }[]> {
  // named: train.samples
  const samples = await db.sql.query<{ id: number; label: number; series: Uint8Array }>(
    'SELECT id, label, series FROM sample WHERE dataset_id = $1 AND id = ANY($2::int[])',
    [datasetId, ids],
  );
  return samples.map((s) => ({ id: Number(s.id), label: Number(s.label), series: s.series }));
}

/** Marks attempt `attempt`'s training finished (stopped: the run left RUNNING or is gone). */
export async function markAttemptStopped(db: Database, runId: number, attempt: number): Promise<void> {
  // named: train.stopped
  await db.sql.query('UPDATE train_job SET finished_at = now(), updated_at = now() WHERE run_id = $1 AND attempts = $2', [runId, attempt]);
}

/**
 * Updates attempt `attempt`'s train_job row while the run is RUNNING under it; false when the run
 * left RUNNING or a newer attempt has it. `set` is one of the literals of the writers below.
 */
async function updateAttempt(db: Database, runId: number, attempt: number, set: string, values: unknown[]): Promise<boolean> {
  // named: train.progress (the SET list is one of the literals in recordBackend, recordEpoch, recordAttemptError)
  const rows = await db.sql.query(
    `UPDATE train_job t SET ${set}, updated_at = now() FROM run r
     WHERE t.run_id = $1 AND t.attempts = $2 AND r.id = t.run_id AND r.status = 'RUNNING' RETURNING 1`,
    [runId, attempt, ...values],
  );
  return rows.length > 0;
}

/** The backend the attempt trains on; false when the attempt no longer has the run. */
export function recordBackend(db: Database, runId: number, attempt: number, backend: string): Promise<boolean> {
  return updateAttempt(db, runId, attempt, 'backend = $3', [backend]);
}

/** The attempt's epoch progress; false when the attempt no longer has the run. */
export function recordEpoch(
  db: Database,
  runId: number,
  attempt: number,
  progress: { epoch: number; step: number; loss: number; accuracy: number },
): Promise<boolean> {
  return updateAttempt(db, runId, attempt, 'epochs_done = $3, steps_done = $4, epoch_loss = $5, epoch_accuracy = $6', [
    progress.epoch,
    progress.step,
    progress.loss,
    progress.accuracy,
  ]);
}

/** The reason the attempt failed (it will be retried); false when the attempt no longer has the run. */
export function recordAttemptError(db: Database, runId: number, attempt: number, reason: string): Promise<boolean> {
  return updateAttempt(db, runId, attempt, 'error = $3', [reason]);
}

/** Locks the run's train_job row: its attempts and the run's status; null when the run is gone. */
export async function lockTrainAttempt(tx: Tx, runId: number): Promise<{ attempts: number; status: string } | null> {
  // named: train.lockAttempt
  const [state] = await tx.query<{ attempts: number; status: string }>(
    'SELECT t.attempts, r.status::text AS status FROM train_job t JOIN run r ON r.id = t.run_id WHERE t.run_id = $1 FOR UPDATE OF t',
    [runId],
  );
  return state ? { attempts: Number(state.attempts), status: state.status } : null;
}

/** The run's checkpoint at `step`, if it has one. */
export async function checkpointAtStep(tx: Tx, runId: number, step: number): Promise<{ id: number; weightSha256: string } | null> {
  // named: train.checkpointAtStep
  const [existing] = await tx.query<{ id: number; weight_sha256: string }>('SELECT id, weight_sha256 FROM checkpoint WHERE run_id = $1 AND step = $2', [
    runId,
    step,
  ]);
  return existing ? { id: Number(existing.id), weightSha256: existing.weight_sha256 } : null;
}

/** Deletes a checkpoint an earlier attempt stored (its weights and metrics go with it). */
export async function deleteCheckpoint(tx: Tx, checkpointId: number): Promise<void> {
  // named: train.replaceCheckpoint
  await tx.query('DELETE FROM checkpoint WHERE id = $1', [checkpointId]);
}

/** Inserts a checkpoint and its weights; its id. */
export async function insertCheckpoint(
  tx: Tx,
  checkpoint: {
    runId: number;
    step: number;
    epoch: number;
    learningRate: number;
    weightSha256: string;
    /** Stored as JSON. */
    weightSpecs: unknown;
    weights: Buffer;
    /** SHA-256 of each layer's weights (the checkpoints module's layerHashesOf), for the frozen-trunk cache. */
    layerHashes: Record<string, string>;
  },
): Promise<number> {
  // named: train.insertCheckpoint
  const [row] = await tx.query<{ id: number }>(
    `INSERT INTO checkpoint (run_id, step, epoch, learning_rate, weight_bytes, weight_sha256) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
    [checkpoint.runId, checkpoint.step, checkpoint.epoch, checkpoint.learningRate, checkpoint.weights.byteLength, checkpoint.weightSha256],
  );
  const checkpointId = Number(row!.id);
  // The frozen layers of a fine-tuning are stored once, by the first checkpoint that has them.
  await storeWeights(tx, checkpointId, { specs: checkpoint.weightSpecs as WeightSpec[], data: checkpoint.weights, layerHashes: checkpoint.layerHashes });
  return checkpointId;
}

/** The progress after a stored point: `points` points, at least `step` steps. */
export async function recordPointStored(tx: Tx, runId: number, points: number, step: number): Promise<void> {
  // named: train.pointStored
  await tx.query('UPDATE train_job SET points_done = $2, steps_done = greatest(steps_done, $3), updated_at = now() WHERE run_id = $1', [
    runId,
    points,
    step,
  ]);
}

/** Marks attempt `attempt` finished without error while the run is RUNNING under it; false otherwise. */
export async function finishAttempt(tx: Tx, runId: number, attempt: number): Promise<boolean> {
  // named: train.finish
  const done = await tx.query(
    `UPDATE train_job t SET finished_at = now(), error = NULL, updated_at = now() FROM run r
     WHERE t.run_id = $1 AND t.attempts = $2 AND r.id = t.run_id AND r.status = 'RUNNING' RETURNING 1`,
    [runId, attempt],
  );
  return done.length > 0;
}

/** RUNNING → COMPLETED. */
export async function markRunCompleted(tx: Tx, runId: number): Promise<void> {
  // named: train.completed
  await tx.query(`UPDATE run SET status = 'COMPLETED', updated_at = now() WHERE id = $1`, [runId]);
}

/**
 * Records the reason and finishes the train_job when the run is still PENDING or RUNNING (under
 * `attempt`, if given); false when it is not.
 */
export async function failAttempt(tx: Tx, runId: number, attempt: number | null, reason: string): Promise<boolean> {
  // named: train.fail
  const rows = await tx.query(
    `UPDATE train_job t SET error = $3, finished_at = now(), updated_at = now() FROM run r
     WHERE t.run_id = $1 AND ($2::int IS NULL OR t.attempts = $2) AND r.id = t.run_id AND r.status IN ('PENDING', 'RUNNING') RETURNING 1`,
    [runId, attempt, reason],
  );
  return rows.length > 0;
}

/** → FAILED. */
export async function markRunFailed(tx: Tx, runId: number): Promise<void> {
  // named: train.failed
  await tx.query(`UPDATE run SET status = 'FAILED', updated_at = now() WHERE id = $1`, [runId]);
}

/** The error the run's last failed attempt recorded; null when none (or the run is gone). */
export async function lastTrainError(db: Database, runId: number): Promise<string | null> {
  // named: train.lastError
  const [row] = await db.sql.query<{ error: string | null }>('SELECT error FROM train_job WHERE run_id = $1', [runId]);
  return row?.error ?? null;
}
