import { createModelAndRun } from '../helpers/fixtures.js';
import type { TestServer } from '../helpers/server.js';
import { seededRandom } from '../../src/platform/random.js';

/** A seeded generator, so every run of a test sees the same data. */
export const rng = seededRandom;

export const f32 = Math.fround;

export interface TruthSample {
  sampleId: number;
  index: number;
  label: number;
  split: string;
}

/** The values recorded at one checkpoint, per sample id, as sent (compare them through f32). */
export type TruthValues = Map<number, { loss: number; correct: boolean; kNorm: number; gNorm: number; hTrace: number; kCross?: number }>;

export const CLASS_NAMES = ['cat', 'dog, "big"', 'eel'];

/**
 * A dataset of `n` samples (3 classes of unequal sizes; splits train and validation), a run and
 * checkpoints with learning rates, and per-sample metrics recorded through recordMetrics. kNorm
 * takes few distinct values so that ties are common (tie-breaking is part of what is tested).
 */
export async function curationFixture(t: TestServer, options: { n?: number; seed?: number; checkpoints?: { step: number; learningRate: number }[] } = {}) {
  const n = options.n ?? 240;
  const random = rng(options.seed ?? 7);
  const suffix = Math.random().toString(36).slice(2, 8);
  const samples = Array.from({ length: n }, (_, index) => {
    const u = random();
    const label = u < 0.5 ? 0 : u < 0.8 ? 1 : 2;
    return { index, label, split: index % 5 === 4 ? 'validation' : 'train', series: [random(), random(), random(), random()] };
  });
  const { createDataset } = await t.gql(
    `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 1000) { nodes { id index label split } } } }`,
    { input: { name: `curation-${suffix}`, length: 4, channels: 1, classNames: CLASS_NAMES, samples } },
  );
  const datasetId = createDataset.id as string;
  const truth: TruthSample[] = createDataset.samples.nodes.map((s: any) => ({ sampleId: Number(s.id), index: s.index, label: s.label, split: s.split }));
  const { runId } = await createModelAndRun(t, { id: datasetId, length: 4, channels: 1, classes: 3 });
  const checkpoints: { id: string; learningRate: number; values: TruthValues }[] = [];
  for (const { step, learningRate } of options.checkpoints ?? [{ step: 10, learningRate: 1e-3 }, { step: 20, learningRate: 5e-4 }]) {
    const { createCheckpoint } = await t.gql(
      `mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`,
      { input: { runId, step, learningRate, weightSpecs: [{ name: 'w', shape: [1], dtype: 'float32' }], weightData: Buffer.alloc(4).toString('base64') } },
    );
    const values: TruthValues = new Map();
    for (const s of truth) {
      values.set(s.sampleId, {
        loss: random() * 3,
        correct: random() < 0.7,
        kNorm: Math.round(random() * 50) / 10,
        gNorm: random(),
        hTrace: random() * 0.5,
      });
    }
    await recordMetrics(t, createCheckpoint.id, values);
    checkpoints.push({ id: createCheckpoint.id, learningRate, values });
  }
  return { datasetId, runId, truth, checkpoints };
}

export async function recordMetrics(t: TestServer, checkpointId: string, values: TruthValues, only?: (sampleId: number) => boolean) {
  const metrics = [...values.entries()]
    .filter(([sampleId]) => !only || only(sampleId))
    .map(([sampleId, v]) => ({ sampleId: String(sampleId), loss: v.loss, correct: v.correct, kNorm: v.kNorm, gNorm: v.gNorm, hTrace: v.hTrace }));
  await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, { c: checkpointId, m: metrics });
}

export async function recordKCross(t: TestServer, checkpointId: string, target: Record<string, unknown>, values: Map<number, number>) {
  return t.gql(`mutation($c: ID!, $t: TargetSetInput!, $v: [KCrossInput!]!) { recordKCross(checkpointId: $c, target: $t, values: $v) { written } }`, {
    c: checkpointId,
    t: target,
    v: [...values.entries()].map(([sampleId, kCross]) => ({ sampleId: String(sampleId), kCross })),
  });
}

/** Orders rows by (value, sample id) both in `direction`, comparing values in float32 as stored. */
export function bruteOrder<T extends { sampleId: number }>(rows: T[], value: (row: T) => number, direction: 'ASC' | 'DESC'): T[] {
  const sign = direction === 'DESC' ? -1 : 1;
  return [...rows].sort((a, b) => sign * (value(a) - value(b) || a.sampleId - b.sampleId));
}
