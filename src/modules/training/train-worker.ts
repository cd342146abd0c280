import { createHash } from 'node:crypto';
import { architectureConfigProblems, type ArchitectureName, type ModelSource } from '../../compute/index.js';
import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { columnField, writeMetricColumnsIn } from '../terms/metrics.js';
import { producerRef, type ProducerRef } from '../terms/producers.js';
import type { Tx } from '../../platform/db/sql.js';
import { invariant } from '../../platform/errors.js';
import { bytesToFloat32 } from '../../platform/float32.js';
import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import { WorkerStopping, type JobKind, type JobQueue, type QueueJob } from '../jobs/queue.js';
import { publicReason } from '../jobs/queue-worker.js';
import type { TrainEvent, TrainTask } from './train-loop.js';
import { runTraining, TrainingFailed } from './train-runner.js';
import { VERSION } from '../../platform/version.js';
import { layerHashesOf } from '../checkpoints/service.js';
import { purgeUnusedLayers } from '../checkpoints/service.js';
import {
  checkpointAtStep,
  claimTrainJob,
  deleteCheckpoint,
  failAttempt,
  finishAttempt,
  insertCheckpoint,
  lastTrainError,
  lockTrainAttempt,
  markAttemptStopped,
  markRunCompleted,
  markRunFailed,
  markRunRunning,
  recordAttemptError,
  recordBackend,
  recordEpoch,
  recordPointStored,
  startWeights,
  trainModel,
  trainSamples,
  trainState,
  type TrainSpec,
} from './storage.js';

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

type TrainJobMessage = QueueJob<TrainMessage>;

/**
 * A training on the job system (src/modules/jobs/queue.ts). A worker that stops hands its training
 * back as a new job (`resend`): stopping is not the training's failure.
 */
export const TRAIN_KIND: JobKind<TrainMessage> = {
  queue: TRAIN_QUEUE,
  deadLetter: FAILED_TRAIN_QUEUE,
  retry: (config) => ({
    limit: config.compute.trainRetryLimit,
    delaySeconds: config.compute.trainRetryDelaySeconds,
    expireSeconds: config.compute.trainExpireSeconds,
  }),
  onStop: 'resend',
  orphaned: { message: 'the process training this run stopped', logKey: 'trainings', log: 'trainings left active by a stopped process are queued again' },
  handedBackLog: () => 'training handed back to the queue: this worker is stopping',
};

/** What training needs of the process (the compute runtime's dependencies). */
export interface TrainDeps {
  db: Database;
  config: Config;
  log: Logger;
  pubsub: PubSub;
}

/** Sends a training's queue job inside the transaction that makes its run (`queue.defineKind(TRAIN_KIND)` first). */
export async function enqueueTraining(queue: JobQueue, tx: Tx, runId: number): Promise<void> {
  await queue.send(TRAIN_KIND, tx, [{ data: { runId } }]);
}

/** The run left RUNNING (cancelled, deleted, finished elsewhere) or a newer attempt took it over. */
class TrainingStopped extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'TrainingStopped';
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

/**
 * Works trainings from the queue, one at a time per process (each uses a thread of its own while
 * the compute threads serve terms).
 */
export class TrainWorker {
  private constructor(private readonly deps: TrainDeps) {}

  /** Works trainings from `queue` in this process (the queue hands them back when it stops). */
  static async start(deps: TrainDeps, queue: JobQueue): Promise<TrainWorker> {
    const worker = new TrainWorker(deps);
    await queue.work(TRAIN_KIND, {
      concurrency: 1,
      handle: (job, stopping) => worker.train(job, stopping),
      dead: (job) => worker.dead(job),
    });
    return worker;
  }

  private async publish(runId: number): Promise<void> {
    await this.deps.pubsub.publish('runUpdated', { runId });
  }

  /** Takes the training under the next attempt: PENDING → RUNNING; null when there is nothing to do. */
  private async claim(runId: number): Promise<Claim | null> {
    return this.deps.db.transaction(async (tx) => {
      const claimed = await claimTrainJob(tx, runId);
      if (!claimed) return null;
      await markRunRunning(tx, runId);
      return { runId, ...claimed };
    });
  }

  /** The task for the training thread: the model, the weights it starts from, the samples. */
  private async task(claim: Claim): Promise<{ task: TrainTask; datasetId: number; numClasses: number }> {
    const { db, config } = this.deps;
    const { spec } = claim;
    const row = await trainModel(db, claim.runId);
    if (!row) throw new TrainingStopped(`run ${claim.runId} was deleted`);
    const length = row.inputLength;
    const channels = row.channels;
    const numClasses = row.numClasses;
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
      const weights = await startWeights(db, spec.fromCheckpointId);
      if (!weights) throw new TrainingFailed(`checkpoint ${spec.fromCheckpointId}, which the training starts from, no longer exists`, true);
      model = { ...model, weightSpecs: weights.specs, weightData: weights.data } as ModelSource;
    }
    const samples = await trainSamples(db, row.datasetId, claim.sampleIds);
    if (samples.length !== claim.sampleIds.length) {
      throw new TrainingFailed(`${claim.sampleIds.length - samples.length} of the samples the run trains on were deleted`, true);
    }
    const byId = new Map(samples.map((s) => [s.id, s]));
    const per = length * channels;
    const x = new Float32Array(claim.sampleIds.length * per);
    const labels = new Int32Array(claim.sampleIds.length);
    claim.sampleIds.forEach((id, i) => {
      const s = byId.get(id)!;
      const series = bytesToFloat32(s.series);
      invariant(series.length === per, `sample ${id} holds ${series.length} values, not ${per}`);
      x.set(series, i * per);
      labels[i] = s.label;
    });
    const position = new Map(claim.sampleIds.map((id, i) => [id, i]));
    const tracked = claim.trackedIds.map((id) => position.get(id)!).sort((a, b) => a - b);
    return {
      datasetId: row.datasetId,
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
        analyzeEverySteps: spec.analyzeEverySteps ?? null,
        trackEverySteps: spec.trackEverySteps,
        fineTuning: spec.fineTuning ?? 'full',
      },
    };
  }

  /** Works one training job. */
  private async train(job: TrainJobMessage, stopping: AbortSignal): Promise<void> {
    const { db, log, pubsub } = this.deps;
    const { runId } = job.data;
    const claim = await this.claim(runId);
    if (!claim) return;
    await this.publish(runId);
    const abort = new AbortController();
    const stop = () => abort.abort(stopping.reason);
    if (stopping.aborted) stop();
    else stopping.addEventListener('abort', stop, { once: true });
    // A client that sets the run's status (CANCELLED) or deletes it stops the training at once.
    const watching = new AbortController();
    void (async () => {
      for await (const event of pubsub.subscribe('runUpdated', watching.signal)) {
        if (event.runId !== runId) continue;
        const state = await trainState(db, runId);
        if (!state || state.status !== 'RUNNING' || state.attempts !== claim.attempt) {
          abort.abort(new TrainingStopped(state ? `run ${runId} is ${state.status}` : `run ${runId} was deleted`));
        }
      }
    })().catch(() => undefined);
    try {
      const { task, datasetId, numClasses } = await this.task(claim);
      const sampleIds = claim.sampleIds;
      let producer: ProducerRef | null = null;
      let points = 0;
      let lastProgress = 0;
      await runTraining(
        task,
        async (event: TrainEvent) => {
          if (event.type === 'start') {
            // Resolved once, before any transaction: a point's values are written inside its transaction.
            producer = await producerRef(db, { kind: 'SERVER', backend: event.backend.name, version: `tangent ${VERSION}; ${event.backend.version}` });
            log.info({ runId, fineTuning: task.fineTuning, parameters: event.parameters, trunkCached: event.trunkCached, points: event.plan.points.length }, 'training started');
            this.held(claim, await recordBackend(db, runId, claim.attempt, `${event.backend.name} (${event.backend.version})`));
          } else if (event.type === 'epoch') {
            // Short epochs (a small data set) would make an UPDATE and a NOTIFY per few milliseconds.
            const now = Date.now();
            if (event.epoch < task.epochs && now - lastProgress < PROGRESS_INTERVAL_MS) return;
            lastProgress = now;
            this.held(claim, await recordEpoch(db, runId, claim.attempt, { epoch: event.epoch, step: event.step, loss: event.loss, accuracy: event.accuracy }));
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
        await markAttemptStopped(db, runId, claim.attempt).catch(() => undefined);
        log.info({ runId, reason: reason.message }, 'training stopped');
        return;
      }
      // The job system sends a new queue job for the run (TRAIN_KIND hands back with `resend`).
      if (reason instanceof WorkerStopping) throw reason;
      if (error instanceof TrainingFailed && error.permanent) {
        log.warn({ runId, reason: error.message }, 'training failed');
        await this.fail(runId, claim.attempt, error.message);
        return;
      }
      log.warn({ err: error, runId, attempt: claim.attempt, retry: job.retryCount + 1, of: job.retryLimit + 1 }, 'training failed; it will be retried');
      await recordAttemptError(db, runId, claim.attempt, publicReason(error)).catch(() => undefined);
      await this.publish(runId).catch(() => undefined);
      throw error;
    } finally {
      watching.abort();
      stopping.removeEventListener('abort', stop);
    }
  }

  /** After an update of this attempt's train_job row: TrainingStopped when the run left RUNNING or a newer attempt has it. */
  private held(claim: Claim, held: boolean): void {
    if (!held) throw new TrainingStopped(`run ${claim.runId} is no longer trained by attempt ${claim.attempt}`);
  }

  /**
   * Stores one point in one transaction: the checkpoint and its weights (an identical checkpoint an
   * earlier attempt stored at this step is kept), the forward terms of its rows, and the progress.
   */
  private async storePoint(
    claim: Claim,
    event: Extract<TrainEvent, { type: 'point' }>,
    c: { datasetId: number; numClasses: number; sampleIds: number[]; producer: ProducerRef; learningRate: number; points: number },
  ): Promise<void> {
    const { db } = this.deps;
    const weights = Buffer.from(event.weightData);
    const sha = createHash('sha256').update(weights).digest('hex');
    const { step, epoch } = event.point;
    let replaced = false;
    await db.transaction(async (tx) => {
      const state = await lockTrainAttempt(tx, claim.runId);
      if (!state || state.attempts !== claim.attempt || state.status !== 'RUNNING') {
        throw new TrainingStopped(`run ${claim.runId} is no longer trained by attempt ${claim.attempt}`);
      }
      const existing = await checkpointAtStep(tx, claim.runId, step);
      let checkpointId: number;
      if (existing && existing.weightSha256 === sha) {
        checkpointId = existing.id;
      } else {
        if (existing) {
          await deleteCheckpoint(tx, existing.id);
          replaced = true;
        }
        checkpointId = await insertCheckpoint(tx, {
          runId: claim.runId,
          step,
          epoch,
          learningRate: c.learningRate,
          weightSha256: sha,
          weightSpecs: event.weightSpecs,
          weights,
          layerHashes: layerHashesOf(event.weightSpecs, weights),
        });
      }
      const t = event.terms;
      await writeMetricColumnsIn(
        tx,
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
      await recordPointStored(tx, claim.runId, c.points, step);
    });
    // The replaced checkpoint's layers that no other checkpoint holds.
    if (replaced) await purgeUnusedLayers(db);
  }

  /** RUNNING → COMPLETED, when this attempt still has the run. */
  private async finish(claim: Claim): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      this.held(claim, await finishAttempt(tx, claim.runId, claim.attempt));
      await markRunCompleted(tx, claim.runId);
    });
    await this.publish(claim.runId);
  }

  /** Marks the run FAILED with the reason, when it is still PENDING or RUNNING (under `attempt`, if given). */
  private async fail(runId: number, attempt: number | null, reason: string): Promise<void> {
    const changed = await this.deps.db.transaction(async (tx) => {
      const failed = await failAttempt(tx, runId, attempt, reason);
      if (failed) await markRunFailed(tx, runId);
      return failed;
    });
    if (changed) await this.publish(runId);
  }

  /** A training out of retries (or whose every try expired): its run fails, with the reason. */
  private async dead(job: TrainJobMessage): Promise<void> {
    const { db, config, log } = this.deps;
    const { runId } = job.data;
    const lastError = await lastTrainError(db, runId);
    const output = (job.output ?? {}) as { message?: unknown; value?: { message?: unknown } };
    const text = String(output.message ?? output.value?.message ?? '');
    const tries = job.retryLimit + 1;
    const last = /timeout|exceeded/i.test(text)
      ? `it was not finished within ${config.compute.trainExpireSeconds} s (TANGENT_TRAIN_EXPIRE_SECONDS): its worker stopped or was too slow`
      : (lastError ?? (text || 'an error (see the worker log)'));
    const reason = `Training failed ${tries} time${tries === 1 ? '' : 's'}; the last time: ${last}`;
    log.warn({ runId, reason }, 'training failed');
    await this.fail(runId, null, reason);
  }
}
