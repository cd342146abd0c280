import type { Database } from '../../platform/db/database.js';
import { BadUserInputError } from '../../platform/errors.js';
import { dynamicsCounts, dynamicsTraining, type TrainedScope } from './dynamics-storage.js';
import { trainPlan } from './train-plan.js';

/**
 * The dynamics summary of a run (`Run.dynamicsSummary`), computed from its stored rows with one SQL
 * statement when asked (dynamics-storage.ts). It summarises the run's own analysis, never what later
 * queries computed: rows that rankedSamples, termStats or a computeTerms job add to the run's
 * checkpoints (test samples, samples the training did not use, terms nobody recorded) leave it as it was.
 *
 * Which rows are the run's own (its scope):
 * - a run Tangent trained (it has a `train_job`): at each checkpoint of its plan, the rows the
 *   training wrote there: every trained sample (`train_job.sample_ids`) at an analysis point, the
 *   tracked subset (`tracked_ids`) at a tracking point. The training writes every value of those
 *   rows itself, and a stored value is never replaced, so they are the training's values;
 * - a run a client logs: the values the client recorded (a `*_src` producer of kind CLIENT), each
 *   value on its own; a value Tangent computed on demand is not part of it.
 *
 * Definitions over that scope (schema.graphql repeats them):
 * - analysis points: the run's checkpoints with at least one row in scope, in step order;
 * - samples analysed: distinct samples with a row in scope at some analysis point;
 * - H-PSD ratio: of the in-scope (analysis point, sample) rows that have hMinEig, the fraction with
 *   hMinEig ≥ −tolerance (H = diag(π) − ππᵀ is PSD in exact arithmetic);
 * - final training accuracy and loss: means of correct (0/1) and loss over the in-scope rows of
 *   samples in the training split at the last analysis point (each over the rows that have the value);
 * - probability paths: a sample's π at every analysis point (`probs`, or softmax of `logits` where
 *   only logits were in scope); samples with a π at every point are tracked;
 * - path length: the mean over tracked samples of Σ_t ‖π_t − π_{t−1}‖₂ over consecutive points.
 */
export interface DynamicsSummaryRow {
  analysisPoints: number;
  samplesAnalysed: number;
  hPsdPairs: number;
  hPsdRatio: number | null;
  hTolerance: number;
  finalCheckpointId: number | null;
  finalTrainingSamples: number;
  finalTrainingAccuracy: number | null;
  finalTrainingLoss: number | null;
  probabilityPathsTracked: number;
  pathLength: number | null;
}

export interface DynamicsSummaryOptions {
  /** The training split (default `train`). */
  split?: string;
  /** H counts as PSD when its smallest eigenvalue is ≥ −hTolerance (default 1e-6). */
  hTolerance?: number;
}

export const DEFAULT_H_TOLERANCE = 1e-6;

/** The summary of run `runId` (zeros and nulls for a run without rows in scope). */
export async function dynamicsSummary(db: Database, runId: number, options: DynamicsSummaryOptions = {}): Promise<DynamicsSummaryRow> {
  const split = options.split ?? 'train';
  const hTolerance = options.hTolerance ?? DEFAULT_H_TOLERANCE;
  if (!Number.isFinite(hTolerance) || hTolerance < 0) throw new BadUserInputError('hTolerance must be a finite number ≥ 0', 'hTolerance');
  const job = await dynamicsTraining(db, runId);
  let trained: TrainedScope | null = null;
  if (job) {
    // The training's plan says which checkpoint holds which rows (the same plan trainRun stored).
    const plan = trainPlan({ samples: job.sampleIds.length, epochs: job.spec.epochs, batchSize: job.spec.batchSize, analyzeEvery: job.spec.analyzeEvery, analyzeEverySteps: job.spec.analyzeEverySteps ?? null, trackEverySteps: job.spec.trackEverySteps });
    const steps = (kind: 'analysis' | 'track') => plan.points.filter((p) => p.kind === kind).map((p) => p.step);
    trained = { analysisSteps: steps('analysis'), trackSteps: steps('track'), sampleIds: job.sampleIds, trackedIds: job.trackedIds };
  }
  const r = await dynamicsCounts(db, runId, split, hTolerance, trained);
  return {
    analysisPoints: r.analysisPoints,
    samplesAnalysed: r.samplesAnalysed,
    hPsdPairs: r.hPairs,
    hPsdRatio: r.hPairs === 0 ? null : r.hPsd / r.hPairs,
    hTolerance,
    finalCheckpointId: r.finalCheckpointId,
    finalTrainingSamples: r.finalSamples,
    finalTrainingAccuracy: r.accuracy,
    finalTrainingLoss: r.loss,
    probabilityPathsTracked: r.tracked,
    pathLength: r.tracked === 0 ? null : r.pathSum / r.tracked,
  };
}
