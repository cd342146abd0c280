import type { Context } from '../context.js';
import type { Run, TrainJob } from '../../platform/db/generated/client.js';
import { afterCommit, isUniqueViolation } from '../../platform/db/prisma-errors.js';
import { BadUserInputError, NotFoundError, invariant } from '../../platform/errors.js';
import { seededSubset, STREAM, streamSeed, subsetSize, trainPlan } from './train-plan.js';
import type { ComputeRuntime } from '../jobs/runtime.js';
import { checkModelConfig } from '../models/service.js';
import { runForKey } from '../runs/service.js';
import { enqueueTraining, TRAIN_KIND } from './train-worker.js';
import { insertTrainedRun, insertTrainJob, splitSampleIds, trainedRun, trainJobOfRun, type TrainSpec } from './storage.js';

export type { TrainSpec };

/** A checked `trainRun` request. */
export interface TrainRequest extends TrainSpec {
  modelId: number;
  datasetId: number;
  name: string | null;
  /** Samples to track, by id (each one of the trained samples); null: `trackSamples` seeded, when tracking. */
  trackSampleIds: number[] | null;
  /** Whether `trackSamples` was given (it tracks samples even without trackEverySteps). */
  trackSamplesGiven: boolean;
  /** The client's key for this request: sent again, it answers the run already started (runForKey). */
  idempotencyKey?: string | null;
}

/** What `Training` resolves from (codegen maps it here). */
export type TrainingRow = TrainJob;

/** AdamW's weight decay when none is given: PyTorch's default. */
export const DEFAULT_WEIGHT_DECAY = 0.01;

/** Most optimizer steps and checkpoints one training may plan (a bound on what a request can start). */
const MAX_STEPS = 10_000_000;
const MAX_POINTS = 10_000;

/**
 * Makes a run that Tangent trains: checks the model, data set and starting checkpoint, fixes the
 * samples (a seeded subset of the split, in dataset order) and the tracked subset, and writes the
 * run (PENDING), its `train_job` row and its queue job in one transaction. A worker trains it
 * (src/modules/training/train-worker.ts).
 */
export async function startTraining(ctx: Context, runtime: ComputeRuntime, request: TrainRequest): Promise<Run> {
  const [model, dataset] = await Promise.all([ctx.loaders.modelById.load(request.modelId), ctx.loaders.datasetById.load(request.datasetId)]);
  if (!model) throw new NotFoundError('Model', request.modelId);
  if (!dataset) throw new NotFoundError('Dataset', request.datasetId);
  if (model.inputLength !== dataset.length || model.channels !== dataset.channels) {
    throw new BadUserInputError(
      `Model ${model.name} takes ${model.inputLength} × ${model.channels} inputs; dataset ${dataset.name} has ${dataset.length} × ${dataset.channels}`,
      'input.modelId',
    );
  }
  if (model.numClasses !== dataset.classNames.length) {
    throw new BadUserInputError(`Model ${model.name} has ${model.numClasses} classes; dataset ${dataset.name} has ${dataset.classNames.length}`, 'input.modelId');
  }
  // A model stored before configs were checked may still not build: refused here, not FAILED later.
  checkModelConfig(model, { modelId: model.id, field: 'input.modelId' });
  const key = request.idempotencyKey ?? null;
  const runName = request.name ?? `train-${model.name}`;
  const started = key ? await runForKey(ctx, key, { name: runName, modelId: model.id, datasetId: dataset.id }) : null;
  if (started) return started;
  if (request.fromCheckpointId !== null) {
    const checkpoint = await ctx.loaders.checkpointById.load(request.fromCheckpointId);
    if (!checkpoint) throw new NotFoundError('Checkpoint', request.fromCheckpointId);
    const run = await ctx.loaders.runById.load(checkpoint.runId);
    invariant(run, `checkpoint ${checkpoint.id} has no run`);
    if (run.modelId !== model.id) {
      throw new BadUserInputError(`Checkpoint ${checkpoint.id} belongs to a run of another model (${run.modelId}); training starts from a checkpoint of model ${model.id}`, 'input.fromCheckpointId');
    }
  }

  const inSplit = await splitSampleIds(ctx.db, dataset.id, request.split);
  if (inSplit.length === 0) {
    const splits = (await ctx.loaders.splitsByDataset.load(dataset.id)).map((s) => s.split);
    throw new BadUserInputError(`Dataset ${dataset.name} has no samples in split '${request.split}' (it has: ${splits.join(', ') || 'no samples'})`, 'input.split');
  }
  const fineTuning = request.fineTuning ?? 'full';
  if (fineTuning === 'adapter_head' && !(model.format === 'BUILTIN' && model.architecture === 'mantis')) {
    throw new BadUserInputError(`fineTuning ADAPTER_HEAD is Mantis's; model ${model.name} is not a BUILTIN mantis model (HEAD or FULL)`, 'input.fineTuning');
  }
  const sampleIds = seededSubset(inSplit, subsetSize(inSplit.length, request.trainFraction), streamSeed(request.seed, STREAM.subset));
  let trackedIds: number[];
  if (request.trackSampleIds !== null) {
    // In dataset order, as the seeded choice is; each one a sample the run trains on (analysed at every analysis point).
    const trained = new Map(sampleIds.map((id, i) => [id, i]));
    const wanted = [...new Set(request.trackSampleIds)];
    const stray = wanted.find((id) => !trained.has(id));
    if (stray !== undefined) {
      throw new BadUserInputError(
        `Sample ${stray} is not one of the samples this run trains on (split '${request.split}', trainFraction ${request.trainFraction}, seed ${request.seed}); track samples it trains on, or give trackSamples`,
        'input.trackSampleIds',
      );
    }
    trackedIds = wanted.sort((a, b) => trained.get(a)! - trained.get(b)!);
  } else if (request.trackEverySteps !== null || request.trackSamplesGiven) {
    trackedIds = seededSubset(sampleIds, Math.min(request.trackSamples, sampleIds.length), streamSeed(request.seed, STREAM.tracked));
  } else {
    trackedIds = [];
  }
  const plan = trainPlan({
    samples: sampleIds.length,
    epochs: request.epochs,
    batchSize: request.batchSize,
    analyzeEvery: request.analyzeEvery,
    analyzeEverySteps: request.analyzeEverySteps ?? null,
    trackEverySteps: request.trackEverySteps,
  });
  if (plan.totalSteps > MAX_STEPS) throw new BadUserInputError(`${plan.totalSteps} optimizer steps; at most ${MAX_STEPS} per training`, 'input.epochs');
  if (plan.points.length > MAX_POINTS) {
    throw new BadUserInputError(`${plan.points.length} checkpoints with metrics; at most ${MAX_POINTS} per training (raise analyzeEvery or trackEverySteps)`, 'input.trackEverySteps');
  }

  const { modelId: _m, datasetId: _d, name: _n, trackSampleIds: _t, trackSamplesGiven: _g, ...spec } = request;
  const stored: TrainSpec = { ...spec, fineTuning };
  const config = {
    learningRate: spec.learningRate,
    optimizer: spec.optimizer,
    epochs: spec.epochs,
    batchSize: spec.batchSize,
    seed: spec.seed,
    extra: {
      trainedBy: 'tangent',
      split: spec.split,
      trainFraction: spec.trainFraction,
      analyzeEvery: spec.analyzeEvery,
      ...(spec.weightDecay !== null ? { weightDecay: spec.weightDecay } : {}),
      ...(spec.analyzeEverySteps ? { analyzeEverySteps: spec.analyzeEverySteps } : {}),
      ...(fineTuning !== 'full' ? { fineTuning } : {}),
      ...(spec.trackEverySteps !== null ? { trackEverySteps: spec.trackEverySteps } : {}),
      ...(trackedIds.length > 0 ? { trackSamples: trackedIds.length } : {}),
      ...(spec.fromCheckpointId !== null ? { fromCheckpointId: spec.fromCheckpointId } : {}),
    },
  };
  await runtime.queue.defineKind(TRAIN_KIND);
  let runId: number;
  try {
    runId = await ctx.db.transaction(async (tx) => {
      const id = await insertTrainedRun(tx, { name: runName, modelId: model.id, datasetId: dataset.id, config, idempotencyKey: key });
      await insertTrainJob(tx, {
        runId: id,
        spec: stored,
        sampleIds,
        trackedIds,
        stepsPerEpoch: plan.stepsPerEpoch,
        totalSteps: plan.totalSteps,
        totalPoints: plan.points.length,
      });
      await enqueueTraining(runtime.queue, tx, id);
      return id;
    });
  } catch (error) {
    // Two sends of one key at once: the second finds the first's run.
    const again = key && isUniqueViolation(error) ? await runForKey(ctx, key, { name: runName, modelId: model.id, datasetId: dataset.id }) : null;
    if (again) return again;
    throw error;
  }
  runtime.queue.notify(TRAIN_KIND);
  const run = await afterCommit(async () => {
    await ctx.pubsub.publish('runUpdated', { runId });
    return trainedRun(ctx.db, runId);
  });
  ctx.loaders.runById.clear(runId).prime(runId, run);
  return run;
}

/** The training of a run, or null for a run that a client logs. */
export function trainingOf(ctx: Pick<Context, 'db'>, runId: number): Promise<TrainJob | null> {
  return trainJobOfRun(ctx.db, runId);
}

/** `Training.progress` from the row. */
export function trainingProgress(job: TrainJob) {
  const spec = job.spec as unknown as TrainSpec;
  return {
    epochsDone: job.epochsDone,
    epochs: spec.epochs,
    stepsDone: job.stepsDone,
    steps: job.totalSteps,
    stepsPerEpoch: job.stepsPerEpoch,
    pointsDone: job.pointsDone,
    points: job.totalPoints,
    fraction: job.totalSteps === 0 ? 1 : job.stepsDone / job.totalSteps,
    epochLoss: job.epochLoss,
    epochAccuracy: job.epochAccuracy,
  };
}
