/**
 * What a training run will do, decided before any tensor work: the seeded random streams, the subset
 * of the split it trains on, the tracked subset, and the steps at which it stops to record a
 * checkpoint with metrics. Plain numbers; the service stores the plan and the loop follows it.
 */

import { seededRandom } from '../../platform/random.js';

export { seededRandom };

/** Independent streams of one run seed: weight init and tfjs randomness, shuffling, subset, tracked subset. */
export const STREAM = { tfjs: 1, shuffle: 2, subset: 3, tracked: 4 } as const;

/** The seed of one stream of a run seed (distinct streams never share a sequence). */
export function streamSeed(seed: number, stream: number): number {
  return (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(stream, 0x85ebca77)) >>> 0;
}

/** A seeded Fisher–Yates permutation of 0…n−1. */
export function permutation(n: number, random: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** `count` of `items` chosen by the seed, returned in their original order. */
export function seededSubset<T>(items: readonly T[], count: number, seed: number): T[] {
  if (count >= items.length) return [...items];
  const order = permutation(items.length, seededRandom(seed));
  return Array.from(order.subarray(0, count))
    .sort((a, b) => a - b)
    .map((i) => items[i]!);
}

/** Samples trained on for a split of `n` samples and a fraction in (0, 1]: round(fraction · n), at least 1. */
export function subsetSize(n: number, fraction: number): number {
  return Math.min(n, Math.max(1, Math.round(fraction * n)));
}

/** One stop of the loop: an analysis point (every trained sample) or a tracking point (the tracked subset). */
export interface PlannedPoint {
  step: number;
  /** Epochs done at this step (fractional between epochs). */
  epoch: number;
  kind: 'analysis' | 'track';
}

export interface TrainPlanInput {
  samples: number;
  epochs: number;
  batchSize: number;
  /** Analysis every k epochs (plus the start and the last epoch). */
  analyzeEvery: number;
  /** Analysis every k optimizer steps instead (plus the start and the last step); null or absent: by epochs. */
  analyzeEverySteps?: number | null;
  /** π of the tracked subset every this many optimizer steps as well; null: at analysis points only. */
  trackEverySteps: number | null;
}

export interface TrainPlan {
  stepsPerEpoch: number;
  totalSteps: number;
  /** In step order, one per step. */
  points: PlannedPoint[];
}

/**
 * The stops of a run: analysis at step 0 (the weights it starts from), after every `analyzeEvery`-th
 * epoch (or every `analyzeEverySteps`-th optimizer step) and after the last one; tracking points
 * every `trackEverySteps` steps where no analysis point already is.
 */
export function trainPlan(input: TrainPlanInput): TrainPlan {
  const stepsPerEpoch = Math.ceil(input.samples / input.batchSize);
  const totalSteps = stepsPerEpoch * input.epochs;
  const byStep = new Map<number, PlannedPoint>();
  const analysisAt = (epoch: number) => byStep.set(epoch * stepsPerEpoch, { step: epoch * stepsPerEpoch, epoch, kind: 'analysis' });
  analysisAt(0);
  const everySteps = input.analyzeEverySteps ?? null;
  if (everySteps !== null) {
    for (let s = everySteps; s < totalSteps; s += everySteps) byStep.set(s, { step: s, epoch: s / stepsPerEpoch, kind: 'analysis' });
  } else {
    for (let e = input.analyzeEvery; e <= input.epochs; e += input.analyzeEvery) analysisAt(e);
  }
  analysisAt(input.epochs);
  if (input.trackEverySteps !== null) {
    for (let s = input.trackEverySteps; s < totalSteps; s += input.trackEverySteps) {
      if (!byStep.has(s)) byStep.set(s, { step: s, epoch: s / stepsPerEpoch, kind: 'track' });
    }
  }
  return { stepsPerEpoch, totalSteps, points: [...byStep.values()].sort((a, b) => a.step - b.step) };
}
