import { createHash, randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { architectureConfigProblems, type ArchitectureName, type ModelSource } from '../../compute/index.js';
import type { Database } from '../../platform/db/database.js';
import { columnField, writeMetricColumns } from '../terms/metrics-storage.js';
import { producerId, type ProducerKey } from '../terms/producers-storage.js';
import type { Tx } from '../../platform/db/sql.js';
import { invariant } from '../../platform/errors.js';
import { bytesToFloat32 } from '../../platform/float32.js';
import type { JobQueue } from '../jobs/queue.js';
import { inTransaction, joiningDb } from '../jobs/storage.js';
import { publicReason } from '../jobs/queue-worker.js';
import type { TrainEvent, TrainTask } from './train-loop.js';
import { runTraining, TrainingFailed } from './train-runner.js';
import { VERSION } from '../../platform/version.js';
import type { RuntimeDeps } from '../jobs/runtime.js';
import type { TrainSpec } from './service.js';

/**
 * The durable side of runs that Tangent trains itself. `trainRun` writes the run, its `train_job`
 * row and one pg-boss job on the queue `tangent-train` in one transaction; a worker (any process
 * with a compute runtime that works jobs: a server with TANGENT_WORKER=on, `tangent worker`,
 * `tangent train`) takes the job, trains on a thread of its own (src/train), and on this process's
 * event loop stores each point's checkpoint and metrics in one transaction, then the run's status.
 *
 * A worker that stops (a server restart) hands its training back to the queue as a new job; one
 * that dies mid-way is failed by pg-boss and tried again, up to TANGENT_TRAIN_RETRY_LIMIT times (at
 * once on the embedded database, where the next process to open it is the only one; after
 * TANGENT_TRAIN_EXPIRE_SECONDS on PostgreSQL). Either way the next worker trains again from the
 * start under the next attempt. Training is
 * deterministic, so a checkpoint the earlier attempt stored is found identical (same SHA-256) and
 * kept with its metrics; one that differs (another backend) is replaced. Writes of an older
 * attempt are refused, so two workers never both write a run.
 */
export const TRAIN_QUEUE = 'tangent-train';
export const FAILED_TRAIN_QUEUE = 'tangent-train-failed';

/** Epoch progress is written (and announced on runUpdated) at most this often; the last epoch always. */
const PROGRESS_INTERVAL_MS = 250;

/** What a training's queue job carries. */
export interface TrainMessage {
  runId: number;
}

type TrainJobMessage = PgBoss.JobWithMetadata<TrainMessage>;

/** pg-boss's database interface over one of our transactions. */
function executor(tx: Tx): PgBoss.Db {
  return { executeSql: async (text, values) => ({ rows: (await tx.query(text, values ?? [])) as never[] }) };
}

const queuesReady = new WeakMap<JobQueue, Promise<void>>();

/**
 * Creates the training queues once per job queue, under the set-up lock every process shares
 * (createQueue is idempotent, but two processes creating queues at once deadlock; it is DDL, so
 * never inside a caller's transaction). A failed try is forgotten, so the next call tries again.
 */
export function ensureTrainQueues(queue: JobQueue): Promise<void> {
  let ready = queuesReady.get(queue);
  if (!ready) {
    ready = queue.createQueues([[FAILED_TRAIN_QUEUE], [TRAIN_QUEUE, { name: TRAIN_QUEUE, deadLetter: FAILED_TRAIN_QUEUE }]]);
    ready.catch(() => queuesReady.delete(queue));
    queuesReady.set(queue, ready);
  }
  return ready;
}

/** Sends a training's queue job inside the transaction that makes its run (ensureTrainQueues first). */
export async function enqueueTraining(queue: JobQueue, deps: Pick<RuntimeDeps, 'config'>, tx: Tx, runId: number): Promise<void> {
  const c = deps.config.compute;
  await queue.pgBoss.insert(
    [
      {
        id: randomUUID(),
        name: TRAIN_QUEUE,
        data: { runId } satisfies TrainMessage,
        retryLimit: c.trainRetryLimit,
        retryDelay: c.trainRetryDelaySeconds,
        expireInSeconds: c.trainExpireSeconds,
        deadLetter: FAILED_TRAIN_QUEUE,
      },
    ],
    { db: executor(tx) },
  );
}

/** The run left RUNNING (cancelled, deleted, finished elsewhere) or a newer attempt took it over. */
class TrainingStopped extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TrainingStopped';
  }
}

/** This process stops working jobs: the training goes back to the queue without counting as a failed try. */
class WorkerStopping extends Error {
  constructor() {
    super('the worker is stopping');
    this.name = 'WorkerStopping';
  }
}

/** What a worker claims when it (re)starts a training. */
interface Claim {
  runId: number;
  attempt: number;
  spec: TrainSpec;
  sampleIds: number[];
  trackedIds: number[];
}

/** The run's status as the training sees it; null when the run is gone. */
async function runState(db: Database, runId: number): Promise<{ status: string; attempts: number } | null> {
  // named: train.state
  const [row] = await db.sql.query<{ status: string; attempts: number | null }>(
    'SELECT r.status::text AS status, t.attempts FROM run r LEFT JOIN train_job t ON t.run_id = r.id WHERE r.id = $1',
    [runId],
  );
  return row ? { status: row.status, attempts: Number(row.attempts ?? 0) } : null;
}

const workers = new WeakMap<Database, TrainWorker>();

/** The training worker of this process for this database, if it runs one. */
export function findTrainWorker(db: Database): TrainWorker | undefined {
  return workers.get(db);
}

/**
 * Works trainings from the queue, one at a time per process (each uses a thread of its own while
 * the compute threads serve terms).
 */
export class TrainWorker {
  private readonly workerIds: string[] = [];
  private current: AbortController | null = null;
  private stopping = false;

  private constructor(
    private readonly deps: RuntimeDeps,
    private readonly queue: JobQueue,
  ) {}

  static async start(deps: RuntimeDeps, queue: JobQueue): Promise<TrainWorker> {
    const worker = new TrainWorker(deps, queue);
    const boss = queue.pgBoss;
    await ensureTrainQueues(queue);
    await worker.recoverOrphans();
    const options = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: deps.config.compute.pollSeconds };
    worker.workerIds.push(
      await boss.work<TrainMessage>(TRAIN_QUEUE, options, async ([job]) => {
        if (job) await worker.train(job);
      }),
    );
    await boss.work<TrainMessage>(FAILED_TRAIN_QUEUE, options, async ([job]) => {
      if (job) await worker.dead(job);
    });
    workers.set(deps.db, worker);
    return worker;
  }

  /** Wakes this process's training worker now rather than at its next poll. */
  notify(): void {
    for (const id of this.workerIds) this.queue.pgBoss.notifyWorker(id);
  }

  /** Stops the training under way; it goes back to the queue for the next worker. */
  stop(): void {
    if (workers.get(this.deps.db) === this) workers.delete(this.deps.db);
    this.stopping = true;
    this.current?.abort(new WorkerStopping());
  }

  /**
   * On the embedded database only one process holds the data folder, so a training still active in
   * the queue at start was left by a process that died: it is failed back to be retried now.
   */
  private async recoverOrphans(): Promise<void> {
    const { db, log } = this.deps;
    if (db.kind !== 'pglite') return;
    // named: train.orphans
    const rows = await db.sql.query<{ id: string }>(`SELECT id::text FROM pgboss.job WHERE name = $1 AND state = 'active'`, [TRAIN_QUEUE]);
    if (rows.length === 0) return;
    const fail = this.queue.pgBoss.fail.bind(this.queue.pgBoss) as (name: string, ids: string[], data: object) => Promise<void>;
    await fail(TRAIN_QUEUE, rows.map((r) => r.id), { message: 'the process training this run stopped' });
    log.info({ trainings: rows.length }, 'trainings left active by a stopped process are queued again');
  }

  private async publish(runId: number): Promise<void> {
    await this.deps.pubsub.publish('runUpdated', { runId });
  }

  /** Takes the training under the next attempt: PENDING → RUNNING; null when there is nothing to do. */
  private async claim(runId: number): Promise<Claim | null> {
    return this.deps.db.transaction(async (tx) => {
      // named: train.claim
      const [row] = await tx.query<{ attempts: number; spec: TrainSpec; sample_ids: number[]; tracked_ids: number[] }>(
        `UPDATE train_job t SET attempts = t.attempts + 1, started_at = coalesce(t.started_at, now()), finished_at = NULL,
                epochs_done = 0, steps_done = 0, points_done = 0, epoch_loss = NULL, epoch_accuracy = NULL, updated_at = now()
         FROM run r WHERE t.run_id = $1 AND r.id = t.run_id AND r.status IN ('PENDING', 'RUNNING')
         RETURNING t.attempts, t.spec, t.sample_ids, t.tracked_ids`,
        [runId],
      );
      if (!row) return null;
      // named: train.markRunning
      await tx.query(`UPDATE run SET status = 'RUNNING', updated_at = now() WHERE id = $1 AND status = 'PENDING'`, [runId]);
      return { runId, attempt: Number(row.attempts), spec: row.spec, sampleIds: row.sample_ids.map(Number), trackedIds: row.tracked_ids.map(Number) };
    });
  }

  /** The task for the training thread: the model, the weights it starts from, the samples. */
  private async task(claim: Claim): Promise<{ task: TrainTask; datasetId: number; numClasses: number }> {
    const { db, config } = this.deps;
    const { spec } = claim;
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
      [claim.runId],
    );
    if (!row) throw new TrainingStopped(`run ${claim.runId} was deleted`);
    const length = Number(row.input_length);
    const channels = Number(row.channels);
    const numClasses = Number(row.num_classes);
    let model: ModelSource;
    if (row.format === 'BUILTIN') {
      // trainRun checked the model; this catches a model whose row changed since (the same rules).
      const problems = architectureConfigProblems(row.architecture ?? '', row.config ?? {}, { length, channels, classes: numClasses });
      if (problems.length > 0) throw new TrainingFailed(problems.map((p) => p.message).join('; '), true);
      // The run's seed seeds the initial weights, whatever seed the stored model's config names.
      const archConfig = { ...(row.config ?? {}), length, channels, classes: numClasses, seed: spec.seed };
      model = { architecture: row.architecture as ArchitectureName, config: archConfig };
    } else {
      if (!row.topology) throw new TrainingFailed('the model has no topology', true);
      model = { modelTopology: row.topology };
    }
    if (spec.fromCheckpointId !== null) {
      // named: train.startWeights
      const [weights] = await db.sql.query<{ specs: ModelSource['weightSpecs']; data: Uint8Array }>(
        'SELECT specs, data FROM checkpoint_weights WHERE checkpoint_id = $1',
        [spec.fromCheckpointId],
      );
      if (!weights) throw new TrainingFailed(`checkpoint ${spec.fromCheckpointId}, which the training starts from, no longer exists`, true);
      model = { ...model, weightSpecs: weights.specs, weightData: weights.data } as ModelSource;
    }
    // named: train.samples
    const samples = await db.sql.query<{ id: number; label: number; series: Uint8Array }>(
      'SELECT id, label, series FROM sample WHERE dataset_id = $1 AND id = ANY($2::int[])',
      [Number(row.dataset_id), claim.sampleIds],
    );
    if (samples.length !== claim.sampleIds.length) {
      throw new TrainingFailed(`${claim.sampleIds.length - samples.length} of the samples the run trains on were deleted`, true);
    }
    const byId = new Map(samples.map((s) => [Number(s.id), s]));
    const per = length * channels;
    const x = new Float32Array(claim.sampleIds.length * per);
    const labels = new Int32Array(claim.sampleIds.length);
    claim.sampleIds.forEach((id, i) => {
      const s = byId.get(id)!;
      const series = bytesToFloat32(s.series);
      invariant(series.length === per, `sample ${id} holds ${series.length} values, not ${per}`);
      x.set(series, i * per);
      labels[i] = Number(s.label);
    });
    const position = new Map(claim.sampleIds.map((id, i) => [id, i]));
    const tracked = claim.trackedIds.map((id) => position.get(id)!).sort((a, b) => a - b);
    return {
      datasetId: Number(row.dataset_id),
      numClasses,
      task: {
        backend: config.backend,
        model,
        x,
        labels,
        tracked,
        optimizer: spec.optimizer,
        learningRate: spec.learningRate,
        weightDecay: spec.weightDecay ?? 0,
        epochs: spec.epochs,
        batchSize: spec.batchSize,
        seed: spec.seed,
        analyzeEvery: spec.analyzeEvery,
        trackEverySteps: spec.trackEverySteps,
      },
    };
  }

  /** Works one training job. */
  private async train(job: TrainJobMessage): Promise<void> {
    const { db, log, pubsub } = this.deps;
    const { runId } = job.data;
    const claim = await this.claim(runId);
    if (!claim) return;
    await this.publish(runId);
    const abort = new AbortController();
    this.current = abort;
    if (this.stopping) abort.abort(new WorkerStopping());
    // A client that sets the run's status (CANCELLED) or deletes it stops the training at once.
    const watching = new AbortController();
    void (async () => {
      for await (const event of pubsub.subscribe('runUpdated', watching.signal)) {
        if (event.runId !== runId) continue;
        const state = await runState(db, runId);
        if (!state || state.status !== 'RUNNING' || state.attempts !== claim.attempt) {
          abort.abort(new TrainingStopped(state ? `run ${runId} is ${state.status}` : `run ${runId} was deleted`));
        }
      }
    })().catch(() => undefined);
    try {
      const { task, datasetId, numClasses } = await this.task(claim);
      const sampleIds = claim.sampleIds;
      const joined = joiningDb(db);
      let producer: ProducerKey | null = null;
      let points = 0;
      let lastProgress = 0;
      await runTraining(
        task,
        async (event: TrainEvent) => {
          if (event.type === 'start') {
            producer = { kind: 'SERVER', backend: event.backend.name, version: `tangent ${VERSION}; ${event.backend.version}` };
            await producerId(joined, producer); // cached before any transaction (see joiningDb)
            await this.update(claim, 'backend = $3', [`${event.backend.name} (${event.backend.version})`]);
          } else if (event.type === 'epoch') {
            // Short epochs (a small data set) would make an UPDATE and a NOTIFY per few milliseconds.
            const now = Date.now();
            if (event.epoch < task.epochs && now - lastProgress < PROGRESS_INTERVAL_MS) return;
            lastProgress = now;
            await this.update(claim, 'epochs_done = $3, steps_done = $4, epoch_loss = $5, epoch_accuracy = $6', [event.epoch, event.step, event.loss, event.accuracy]);
            await this.publish(runId);
          } else {
            invariant(producer, 'the thread reports its backend first');
            points++;
            await this.storePoint(claim, event, { datasetId, numClasses, sampleIds, producer, learningRate: task.learningRate, points });
            await this.publish(runId);
          }
        },
        abort.signal,
      );
      await this.finish(claim);
      log.info({ runId, attempt: claim.attempt, points }, 'training done');
    } catch (error) {
      const reason = abort.signal.aborted ? abort.signal.reason : error;
      if (reason instanceof TrainingStopped) {
        // named: train.stopped
        await db.sql.query('UPDATE train_job SET finished_at = now(), updated_at = now() WHERE run_id = $1 AND attempts = $2', [runId, claim.attempt]).catch(() => undefined);
        log.info({ runId, reason: reason.message }, 'training stopped');
        return;
      }
      if (reason instanceof WorkerStopping) {
        // A new queue job for the run, and this one completes: stopping a worker (a server restart,
        // a `tangent compute` that took a training while it worked) is not the training's failure.
        await db.transaction((tx) => enqueueTraining(this.queue, this.deps, tx, runId));
        log.info({ runId, attempt: claim.attempt }, 'training handed back to the queue: this worker is stopping');
        return;
      }
      if (error instanceof TrainingFailed && error.permanent) {
        log.warn({ runId, reason: error.message }, 'training failed');
        await this.fail(runId, claim.attempt, error.message);
        return;
      }
      log.warn({ err: error, runId, attempt: claim.attempt, retry: job.retryCount + 1, of: job.retryLimit + 1 }, 'training failed; it will be retried');
      await this.update(claim, 'error = $3', [publicReason(error)]).catch(() => undefined);
      await this.publish(runId).catch(() => undefined);
      throw error;
    } finally {
      watching.abort();
      if (this.current === abort) this.current = null;
    }
  }

  /** Updates this attempt's train_job row; TrainingStopped when the run left RUNNING or a newer attempt has it. */
  private async update(claim: Claim, set: string, values: unknown[]): Promise<void> {
    // named: train.progress (the SET list is one of the literals at the call sites)
    const rows = await this.deps.db.sql.query(
      `UPDATE train_job t SET ${set}, updated_at = now() FROM run r
       WHERE t.run_id = $1 AND t.attempts = $2 AND r.id = t.run_id AND r.status = 'RUNNING' RETURNING 1`,
      [claim.runId, claim.attempt, ...values],
    );
    if (rows.length === 0) throw new TrainingStopped(`run ${claim.runId} is no longer trained by attempt ${claim.attempt}`);
  }

  /**
   * Stores one point in one transaction: the checkpoint and its weights (an identical checkpoint an
   * earlier attempt stored at this step is kept), the forward terms of its rows, and the progress.
   */
  private async storePoint(
    claim: Claim,
    event: Extract<TrainEvent, { type: 'point' }>,
    c: { datasetId: number; numClasses: number; sampleIds: number[]; producer: ProducerKey; learningRate: number; points: number },
  ): Promise<void> {
    const { db } = this.deps;
    const weights = Buffer.from(event.weightData);
    const sha = createHash('sha256').update(weights).digest('hex');
    const joined = joiningDb(db);
    const { step, epoch } = event.point;
    await db.transaction((tx) =>
      inTransaction(tx, async () => {
        // named: train.lockAttempt
        const [state] = await tx.query<{ attempts: number; status: string }>(
          'SELECT t.attempts, r.status::text AS status FROM train_job t JOIN run r ON r.id = t.run_id WHERE t.run_id = $1 FOR UPDATE OF t',
          [claim.runId],
        );
        if (!state || Number(state.attempts) !== claim.attempt || state.status !== 'RUNNING') {
          throw new TrainingStopped(`run ${claim.runId} is no longer trained by attempt ${claim.attempt}`);
        }
        // named: train.checkpointAtStep
        const [existing] = await tx.query<{ id: number; weight_sha256: string }>('SELECT id, weight_sha256 FROM checkpoint WHERE run_id = $1 AND step = $2', [
          claim.runId,
          step,
        ]);
        let checkpointId: number;
        if (existing && existing.weight_sha256 === sha) {
          checkpointId = Number(existing.id);
        } else {
          // named: train.replaceCheckpoint
          if (existing) await tx.query('DELETE FROM checkpoint WHERE id = $1', [existing.id]);
          // named: train.insertCheckpoint
          const [row] = await tx.query<{ id: number }>(
            `INSERT INTO checkpoint (run_id, step, epoch, learning_rate, weight_bytes, weight_sha256) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
            [claim.runId, step, epoch, c.learningRate, weights.byteLength, sha],
          );
          checkpointId = Number(row!.id);
          // named: train.insertWeights
          await tx.query('INSERT INTO checkpoint_weights (checkpoint_id, specs, data) VALUES ($1, $2::jsonb, $3)', [checkpointId, JSON.stringify(event.weightSpecs), weights]);
        }
        const t = event.terms;
        await writeMetricColumns(
          joined,
          { id: checkpointId, datasetId: c.datasetId, numClasses: c.numClasses },
          {
            sampleIds: Array.from(event.rows, (p) => c.sampleIds[p]!),
            columns: {
              loss: t.loss,
              correct: Array.from(t.correct, (v) => v === 1),
              logits: t.logits,
              probs: t.probs,
              aNorm: t.aNorm,
              hTrace: t.hTrace,
              hMinEig: t.hMinEig,
              gNorm: t.gNorm,
            },
          },
          c.producer,
          columnField(`training step ${step}`),
        );
        // named: train.pointStored
        await tx.query('UPDATE train_job SET points_done = $2, steps_done = greatest(steps_done, $3), updated_at = now() WHERE run_id = $1', [
          claim.runId,
          c.points,
          step,
        ]);
      }),
    );
  }

  /** RUNNING → COMPLETED, when this attempt still has the run. */
  private async finish(claim: Claim): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      // named: train.finish
      const done = await tx.query(
        `UPDATE train_job t SET finished_at = now(), error = NULL, updated_at = now() FROM run r
         WHERE t.run_id = $1 AND t.attempts = $2 AND r.id = t.run_id AND r.status = 'RUNNING' RETURNING 1`,
        [claim.runId, claim.attempt],
      );
      if (done.length === 0) throw new TrainingStopped(`run ${claim.runId} is no longer trained by attempt ${claim.attempt}`);
      // named: train.completed
      await tx.query(`UPDATE run SET status = 'COMPLETED', updated_at = now() WHERE id = $1`, [claim.runId]);
    });
    await this.publish(claim.runId);
  }

  /** Marks the run FAILED with the reason, when it is still PENDING or RUNNING (under `attempt`, if given). */
  private async fail(runId: number, attempt: number | null, reason: string): Promise<void> {
    const changed = await this.deps.db.transaction(async (tx) => {
      // named: train.fail
      const rows = await tx.query(
        `UPDATE train_job t SET error = $3, finished_at = now(), updated_at = now() FROM run r
         WHERE t.run_id = $1 AND ($2::int IS NULL OR t.attempts = $2) AND r.id = t.run_id AND r.status IN ('PENDING', 'RUNNING') RETURNING 1`,
        [runId, attempt, reason],
      );
      // named: train.failed
      if (rows.length) await tx.query(`UPDATE run SET status = 'FAILED', updated_at = now() WHERE id = $1`, [runId]);
      return rows.length > 0;
    });
    if (changed) await this.publish(runId);
  }

  /** A training out of retries (or whose every try expired): its run fails, with the reason. */
  private async dead(job: TrainJobMessage): Promise<void> {
    const { db, config, log } = this.deps;
    const { runId } = job.data;
    // named: train.lastError
    const [row] = await db.sql.query<{ error: string | null }>('SELECT error FROM train_job WHERE run_id = $1', [runId]);
    const output = (job.output ?? {}) as { message?: unknown; value?: { message?: unknown } };
    const text = String(output.message ?? output.value?.message ?? '');
    const tries = job.retryLimit + 1;
    const last = /timeout|exceeded/i.test(text)
      ? `it was not finished within ${config.compute.trainExpireSeconds} s (TANGENT_TRAIN_EXPIRE_SECONDS): its worker stopped or was too slow`
      : (row?.error ?? (text || 'an error (see the worker log)'));
    const reason = `Training failed ${tries} time${tries === 1 ? '' : 's'}; the last time: ${last}`;
    log.warn({ runId, reason }, 'training failed');
    await this.fail(runId, null, reason);
  }
}
