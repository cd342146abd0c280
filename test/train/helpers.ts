import assert from 'node:assert/strict';
import type { Gql } from '../jobs/helpers.js';

/** One stored row as the API returns it. */
export interface MetricRow {
  sample: { id: string; split: string };
  loss: number | null;
  correct: boolean | null;
  probs: number[] | null;
  logits: number[] | null;
  hMinEig: number | null;
  provenance: { term: string; producer: { kind: string; backend: string | null; version: string | null } }[];
}

export interface StoredCheckpoint {
  id: string;
  step: number;
  epoch: number | null;
  learningRate: number | null;
  weightSha256: string;
  metrics: MetricRow[];
}

export const SUMMARY_FIELDS = `analysisPoints samplesAnalysed hPsdPairs hPsdRatio hTolerance finalTrainingSamples finalTrainingAccuracy finalTrainingLoss
  probabilityPathsTracked pathLength finalCheckpoint { id step }`;

export interface Summary {
  analysisPoints: number;
  samplesAnalysed: number;
  hPsdPairs: number;
  hPsdRatio: number | null;
  hTolerance: number;
  finalTrainingSamples: number;
  finalTrainingAccuracy: number | null;
  finalTrainingLoss: number | null;
  probabilityPathsTracked: number;
  pathLength: number | null;
  finalCheckpoint: { id: string; step: number } | null;
}

/** Every checkpoint of a run with every stored row, read page by page through the API. */
export async function readRun(t: Gql, runId: string): Promise<StoredCheckpoint[]> {
  const { run } = await t.gql(`query($id: ID!) { run(id: $id) { checkpoints(first: 1000) { nodes { id step epoch learningRate weightSha256 } } } }`, { id: runId });
  const out: StoredCheckpoint[] = [];
  for (const c of run.checkpoints.nodes as Omit<StoredCheckpoint, 'metrics'>[]) {
    const metrics: MetricRow[] = [];
    let after: string | null = null;
    do {
      const page: any = await t.gql(
        `query($id: ID!, $after: String) { checkpoint(id: $id) { metrics(first: 500, after: $after) {
           pageInfo { hasNextPage endCursor }
           nodes { sample { id split } loss correct probs logits hMinEig provenance { term producer { kind backend version } } } } } }`,
        { id: c.id, after },
      );
      metrics.push(...page.checkpoint.metrics.nodes);
      after = page.checkpoint.metrics.pageInfo.hasNextPage ? page.checkpoint.metrics.pageInfo.endCursor : null;
    } while (after);
    out.push({ ...c, metrics });
  }
  return out;
}

function softmax(z: readonly number[]): number[] {
  const max = Math.max(...z);
  const e = z.map((v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const mean = (values: number[]) => (values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length);

/**
 * The dynamics summary computed the obvious way from the rows, as the schema defines it: an
 * independent implementation to hold `Run.dynamicsSummary`'s SQL against.
 */
export function bruteForceSummary(checkpoints: StoredCheckpoint[], split = 'train', hTolerance = 1e-6): Omit<Summary, 'finalCheckpoint' | 'hTolerance'> & { finalCheckpointId: string | null } {
  const points = checkpoints.filter((c) => c.metrics.length > 0).sort((a, b) => a.step - b.step);
  const rows = points.flatMap((p) => p.metrics);
  const withH = rows.filter((r) => r.hMinEig !== null);
  const last = points.at(-1);
  const finalRows = last ? last.metrics.filter((r) => r.sample.split === split) : [];
  // The API gives [] (not null) for a vector the row does not have (Prisma reads a NULL list as empty).
  const has = (v: number[] | null): v is number[] => v !== null && v.length > 0;
  const pi = (r: MetricRow) => (has(r.probs) ? r.probs : has(r.logits) ? softmax(r.logits) : null);
  const paths = new Map<string, (number[] | null)[]>();
  points.forEach((p, k) => {
    for (const r of p.metrics) {
      const path = paths.get(r.sample.id) ?? Array.from({ length: points.length }, () => null);
      path[k] = pi(r);
      paths.set(r.sample.id, path);
    }
  });
  const tracked = [...paths.values()].filter((path) => path.every((v) => v !== null)) as number[][][];
  const lengths = tracked.map((path) => {
    let total = 0;
    for (let k = 1; k < path.length; k++) total += Math.sqrt(path[k]!.reduce((a, v, j) => a + (v - path[k - 1]![j]!) ** 2, 0));
    return total;
  });
  return {
    analysisPoints: points.length,
    samplesAnalysed: new Set(rows.map((r) => r.sample.id)).size,
    hPsdPairs: withH.length,
    hPsdRatio: withH.length === 0 ? null : withH.filter((r) => r.hMinEig! >= -hTolerance).length / withH.length,
    finalCheckpointId: last?.id ?? null,
    finalTrainingSamples: finalRows.length,
    finalTrainingAccuracy: mean(finalRows.filter((r) => r.correct !== null).map((r) => (r.correct ? 1 : 0))),
    finalTrainingLoss: mean(finalRows.filter((r) => r.loss !== null).map((r) => r.loss!)),
    probabilityPathsTracked: tracked.length,
    pathLength: mean(lengths),
  };
}

/** Numbers equal within a relative tolerance (float32 values read back as decimals, sums in another order). */
export function assertClose(actual: number | null, expected: number | null, what: string, rel = 1e-6): void {
  if (expected === null || actual === null) return assert.equal(actual, expected, what);
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);
}

/** The API's summary against the brute-force one: counts exactly, means within float tolerance. */
export function assertSummary(actual: Summary, expected: ReturnType<typeof bruteForceSummary>): void {
  assert.equal(actual.analysisPoints, expected.analysisPoints, 'analysisPoints');
  assert.equal(actual.samplesAnalysed, expected.samplesAnalysed, 'samplesAnalysed');
  assert.equal(actual.hPsdPairs, expected.hPsdPairs, 'hPsdPairs');
  assertClose(actual.hPsdRatio, expected.hPsdRatio, 'hPsdRatio', 1e-12);
  assert.equal(actual.finalCheckpoint?.id ?? null, expected.finalCheckpointId, 'finalCheckpoint');
  assert.equal(actual.finalTrainingSamples, expected.finalTrainingSamples, 'finalTrainingSamples');
  assertClose(actual.finalTrainingAccuracy, expected.finalTrainingAccuracy, 'finalTrainingAccuracy', 1e-12);
  assertClose(actual.finalTrainingLoss, expected.finalTrainingLoss, 'finalTrainingLoss');
  assert.equal(actual.probabilityPathsTracked, expected.probabilityPathsTracked, 'probabilityPathsTracked');
  assertClose(actual.pathLength, expected.pathLength, 'pathLength');
}
