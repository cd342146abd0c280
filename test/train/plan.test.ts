import assert from 'node:assert/strict';
import { test } from 'node:test';
import { permutation, seededRandom, seededSubset, STREAM, streamSeed, subsetSize, trainPlan } from '../../src/modules/training/train-plan.js';

/** The plan of a training: where it stops, which samples it takes; plain numbers, fixed by the seed. */
test('trainPlan: analysis at the start, every k-th epoch and the last; tracking points in between', () => {
  const plan = trainPlan({ samples: 50, epochs: 5, batchSize: 16, analyzeEvery: 2, trackEverySteps: null });
  assert.equal(plan.stepsPerEpoch, 4);
  assert.equal(plan.totalSteps, 20);
  assert.deepEqual(plan.points, [0, 2, 4, 5].map((epoch) => ({ step: epoch * 4, epoch, kind: 'analysis' })));
  const tracked = trainPlan({ samples: 50, epochs: 2, batchSize: 16, analyzeEvery: 1, trackEverySteps: 3 });
  assert.deepEqual(
    tracked.points.map((p) => `${p.kind[0]}${p.step}@${p.epoch}`),
    ['a0@0', 't3@0.75', 'a4@1', 't6@1.5', 'a8@2'],
  );
  // A tracking step that falls on an analysis point is that analysis point; none at or past the end.
  assert.deepEqual(trainPlan({ samples: 8, epochs: 2, batchSize: 4, analyzeEvery: 1, trackEverySteps: 2 }).points.map((p) => p.kind), ['analysis', 'analysis', 'analysis']);
  // A cadence in steps: the start, every k-th step and the last; epochs no longer place analysis points.
  const bySteps = trainPlan({ samples: 50, epochs: 2, batchSize: 16, analyzeEvery: 1, analyzeEverySteps: 3, trackEverySteps: 2 });
  assert.deepEqual(
    bySteps.points.map((p) => `${p.kind[0]}${p.step}@${p.epoch}`),
    ['a0@0', 't2@0.5', 'a3@0.75', 't4@1', 'a6@1.5', 'a8@2'],
  );
});

test('seeded subsets and permutations: the same seed the same choice, in the original order', () => {
  const items = Array.from({ length: 100 }, (_, i) => i * 10);
  const a = seededSubset(items, 30, streamSeed(7, STREAM.subset));
  assert.deepEqual(a, seededSubset(items, 30, streamSeed(7, STREAM.subset)));
  assert.equal(a.length, 30);
  assert.deepEqual(a, [...a].sort((x, y) => x - y));
  assert.notDeepEqual(a, seededSubset(items, 30, streamSeed(8, STREAM.subset)));
  assert.notDeepEqual(a, seededSubset(items, 30, streamSeed(7, STREAM.tracked)));
  assert.deepEqual(seededSubset(items, 500, 1), items);
  assert.deepEqual([subsetSize(50, 0.5), subsetSize(50, 0.001), subsetSize(3, 0.5), subsetSize(50, 1)], [25, 1, 2, 50]);
  const p = permutation(1000, seededRandom(1));
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual(p, permutation(1000, seededRandom(1)));
  const r = seededRandom(123);
  const draws = Array.from({ length: 10_000 }, r);
  assert.ok(draws.every((v) => v >= 0 && v < 1));
  assert.ok(Math.abs(draws.reduce((s, v) => s + v, 0) / draws.length - 0.5) < 0.02);
});
