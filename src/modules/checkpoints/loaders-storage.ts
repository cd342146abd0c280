import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Checkpoint } from '../../platform/db/generated/client.js';
import { CHECKPOINT_COLUMNS } from './storage.js';
import { readWeights, type CheckpointWeightsRow } from './weight-storage.js';
import { byKey } from '../../platform/db/loader-rows.js';

/**
 * A checkpoint with what queries at it need of its run, model and dataset: curation (the run's
 * dataset and its class names), computing terms (the model, and the dataset's shape to check it
 * against). `checkpoint` is the row in the Prisma shape, as `checkpointById` has it.
 */
export interface CheckpointContext {
  checkpoint: Checkpoint;
  id: number;
  runId: number;
  step: number;
  learningRate: number | null;
  weightBytes: number;
  datasetId: number;
  classNames: string[];
  /** The dataset's series shape (checked against the model's by the compute service). */
  datasetLength: number;
  datasetChannels: number;
  model: { id: number; format: 'TFJS_LAYERS' | 'BUILTIN'; architecture: string | null; config: unknown; topology: unknown; inputLength: number; channels: number; numClasses: number };
}

/**
 * Checkpoints by id with their run, model and dataset, in one statement (not four loader round
 * trips: this is on the hot path of every curation query, and bench/query-run.ts finds it by
 * `class_names`). Absent ids have no entry.
 */
export async function checkpointContextsByIds(db: Database, ids: readonly number[]): Promise<CheckpointContext[]> {
  // named: checkpoint.contextByIds
  const rows = await db.sql.query<
    Checkpoint & {
      datasetId: number;
      classNames: string[];
      datasetLength: number;
      datasetChannels: number;
      modelId: number;
      format: 'TFJS_LAYERS' | 'BUILTIN';
      architecture: string | null;
      config: unknown;
      topology: unknown;
      inputLength: number;
      channels: number;
      numClasses: number;
    }
  >(
    `SELECT c.id, c.run_id AS "runId", c.step, c.epoch, c.learning_rate AS "learningRate", c.weight_bytes AS "weightBytes",
            c.weight_sha256 AS "weightSha256", c.created_at AS "createdAt", r.dataset_id AS "datasetId", d.class_names AS "classNames",
            d.length AS "datasetLength", d.channels AS "datasetChannels", m.id AS "modelId", m.format::text AS format, m.architecture,
            m.config, m.topology, m.input_length AS "inputLength", m.channels, m.num_classes AS "numClasses"
     FROM checkpoint c JOIN run r ON r.id = c.run_id JOIN model m ON m.id = r.model_id JOIN dataset d ON d.id = r.dataset_id
     WHERE c.id = ANY($1::int[])`,
    [[...ids]],
  );
  return rows.map((row) => ({
    checkpoint: {
      id: row.id,
      runId: row.runId,
      step: row.step,
      epoch: row.epoch,
      learningRate: row.learningRate,
      weightBytes: row.weightBytes,
      weightSha256: row.weightSha256,
      createdAt: row.createdAt,
    },
    id: Number(row.id),
    runId: Number(row.runId),
    step: Number(row.step),
    learningRate: row.learningRate === null ? null : Number(row.learningRate),
    weightBytes: Number(row.weightBytes),
    datasetId: Number(row.datasetId),
    classNames: row.classNames,
    datasetLength: Number(row.datasetLength),
    datasetChannels: Number(row.datasetChannels),
    model: {
      id: Number(row.modelId),
      format: row.format,
      architecture: row.architecture,
      config: row.config,
      topology: row.topology,
      inputLength: Number(row.inputLength),
      channels: Number(row.channels),
      numClasses: Number(row.numClasses),
    },
  }));
}

/**
 * The checkpoints module's loaders of one request (src/modules/loaders.ts composes them).
 * checkpointById is the one place a checkpoint is looked up by id; checkpointContextById the one
 * place it is looked up with its run, model and dataset (it primes checkpointById with the row it read).
 */
export function checkpointLoaders(db: Database) {
  // Plain SQL rather than Prisma: every curation query starts with these lookups, and Prisma's query
  // compiler costs milliseconds per call there (bench:query); the rows have the Prisma shape.
  const checkpointById = new DataLoader<number, Checkpoint | null>(async (ids) => {
    // named: checkpoint.byIds
    const rows = await db.sql.query<Checkpoint>(
      `SELECT ${CHECKPOINT_COLUMNS} FROM checkpoint WHERE id = ANY($1::int[])`,
      [[...ids]],
    );
    return byKey(ids, rows, (r) => r.id);
  });
  return {
    checkpointById,
    checkpointContextById: new DataLoader<number, CheckpointContext | null>(async (ids) => {
      const rows = await checkpointContextsByIds(db, ids);
      for (const row of rows) checkpointById.prime(row.id, row.checkpoint);
      return byKey(ids, rows, (r) => r.id);
    }),
    // Weights can be tens of megabytes, put together from shared layers (weight-storage.ts): each is read
    // once per request, one at a time.
    weightsByCheckpoint: new DataLoader<number, CheckpointWeightsRow | null>((ids) => Promise.all(ids.map((id) => readWeights(db.sql, id))), { maxBatchSize: 1 }),
  };
}
