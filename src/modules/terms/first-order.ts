import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { checkSubset } from './subsets.js';
import { BadUserInputError } from '../../platform/errors.js';
import { assertMayCompute, chargeSamples, type ComputeCaller } from './compute-policy.js';
import type { ComputeRuntime } from '../jobs/runtime.js';

/** What `Checkpoint.firstOrder` resolves from (vectors length V, matrices V × V rows). */
export interface FirstOrderRow {
  checkpointId: number;
  observedId: number;
  updatedId: number;
  learningRate: number;
  /** The parameter subset J (and so K) is over. */
  subset: ParameterSubset;
  A: number[][];
  K: number[][];
  G: Float32Array;
  logProbs: number[];
  predictedDeltaLogits: Float32Array;
  predictedDeltaLogProbs: Float32Array;
  nextCheckpointId: number | null;
  observedDeltaLogProbs: number[] | null;
}

function rows(flat: ArrayLike<number>, V: number): number[][] {
  return Array.from({ length: V }, (_, i) => Array.from({ length: V }, (_, j) => flat[i * V + j] as number));
}

/**
 * A(x_o), K(x_o, x_u), G(x_u, y_u) and the predicted Δlog π(·|x_o) = −η A K G at a checkpoint, and,
 * where the run has a later checkpoint, the change of log π(·|x_o) observed there. It is always
 * computed (nothing is stored to read), so `by` must be allowed to compute, and its two samples count
 * against its budget.
 */
export async function firstOrderAt(
  by: ComputeCaller,
  runtime: ComputeRuntime,
  checkpointId: number,
  observedId: number,
  updatedId: number,
  learningRate?: number | null,
  subset: ParameterSubset = ALL_PARAMETERS,
): Promise<FirstOrderRow> {
  const { compute } = runtime;
  const ckpt = await compute.checkpoint(checkpointId);
  const eta = learningRate ?? ckpt.learningRate;
  if (eta === null || eta === undefined) {
    throw new BadUserInputError(`Checkpoint ${checkpointId} has no learning rate recorded; give learningRate`, 'learningRate');
  }
  if (!Number.isFinite(eta)) throw new BadUserInputError('learningRate must be a finite number', 'learningRate');
  const observed = await compute.samples(ckpt, [observedId], 'observedId');
  const updated = await compute.samples(ckpt, [updatedId], 'updatedId');
  assertMayCompute(by, 'firstOrder');
  await chargeSamples(by, 2);
  await checkSubset({ db: by.db, runtimeIfStarted: runtime }, checkpointId, subset);
  const r = await compute.firstOrder(ckpt, observed, updated, eta, subset);
  const nextId = await compute.nextCheckpoint(ckpt);
  let observedDelta: number[] | null = null;
  if (nextId !== null) {
    const next = await compute.checkpoint(nextId);
    // The next checkpoint's logits come from the engine too, so both sides are computed alike.
    const after = await compute.logProbs(next, observed);
    observedDelta = Array.from(after, (v, j) => v - (r.logProbs[j] as number));
  }
  return {
    checkpointId,
    observedId,
    updatedId,
    learningRate: eta,
    subset,
    A: rows(r.A, r.V),
    K: rows(r.K, r.V),
    G: r.G,
    logProbs: Array.from(r.logProbs),
    predictedDeltaLogits: r.deltaLogits,
    predictedDeltaLogProbs: r.deltaLogProbs,
    nextCheckpointId: nextId,
    observedDeltaLogProbs: observedDelta,
  };
}

