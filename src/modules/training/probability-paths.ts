import type { Context } from '../context.js';
import { sampleTerms } from '../terms/compute-terms.js';
import { BadUserInputError, TermsPendingError, invariant } from '../../platform/errors.js';
import { float32ToBytes } from '../../platform/float32.js';
import type { RunRow } from '../../platform/graphql/rows.js';
import { dynamicsTraining } from './dynamics-storage.js';
import { pathValues, runPathPoints } from './paths-storage.js';

/**
 * `Run.probabilityPaths`: π of every class of some samples at every checkpoint of a run, in one
 * request, as columns. A path of P points for S samples over V classes is S·P·V float32 values
 * (450 × 100 × 5 is 225,000: 0.9 MB as base64, read with one statement), so it is returned flat
 * rather than as 45,000 objects.
 *
 * Where a (checkpoint, sample) has neither probs nor logits stored, it is computed through the
 * terms module's `sampleTerms` (the same inline fill, allowance, budget and job rules as
 * `Checkpoint.sampleTerms`): inline while the request's allowance lasts, else as a job per
 * checkpoint, and the field fails with TERMS_PENDING naming the jobs.
 */

/** Most (checkpoint, sample) cells one request returns: 5,000 points of 200 samples. */
export const MAX_PATH_CELLS = 1_000_000;

export interface ProbabilityPathsRow {
  checkpointIds: number[];
  steps: number[];
  epochs: (number | null)[];
  sampleIds: number[];
  labels: number[];
  classes: number;
  /** π, sample-major: probs[(s·P + p)·V + c] (float32 values). */
  probs: number[];
  probsBase64: Uint8Array;
  /** (checkpoint, sample) cells computed for this request (0 when every π was stored). */
  computed: number;
}

/**
 * A float32 value as the shortest decimal that reads back as it: how PostgreSQL prints a stored
 * `real`, so a value computed here reads the same as one stored (and `SampleMetric.probs`).
 */
function float32Decimal(v: number): number {
  const f = Math.fround(v);
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(f.toPrecision(digits));
    if (Math.fround(d) === f) return d;
  }
  return Number(f.toPrecision(9));
}

/**
 * π from stored probs (as stored: float32 values, in PostgreSQL's shortest decimals), or the softmax
 * of stored logits (in float64, then rounded to float32 as a stored π is), written at `out[at…at+V)`.
 */
function writePi(out: number[], at: number, V: number, probs: number[] | null, logits: number[] | null): boolean {
  if (probs && probs.length === V) {
    for (let c = 0; c < V; c++) out[at + c] = probs[c]!;
    return true;
  }
  if (logits && logits.length === V) {
    let max = -Infinity;
    for (const z of logits) max = Math.max(max, z);
    let sum = 0;
    for (const z of logits) sum += Math.exp(z - max);
    for (let c = 0; c < V; c++) out[at + c] = float32Decimal(Math.exp(logits[c]! - max) / sum);
    return true;
  }
  return false;
}

/**
 * The probability paths of `run`: of `sampleIds` (any samples of its dataset, in the order given,
 * duplicates dropped), or by default the samples its training tracks (none for a run a client logs:
 * give sampleIds). `waitMs` as in sampleTerms: how long to wait for jobs started for missing π.
 */
export async function probabilityPaths(
  ctx: Context,
  run: RunRow,
  options: { sampleIds?: readonly number[] | null; waitMs?: number | null } = {},
): Promise<ProbabilityPathsRow> {
  const { waitMs } = options;
  if (waitMs !== null && waitMs !== undefined && (!Number.isInteger(waitMs) || waitMs < 0)) throw new BadUserInputError('waitMs must be a non-negative number of milliseconds', 'waitMs');
  const model = await ctx.loaders.modelById.load(run.modelId);
  invariant(model, `run ${run.id} has no model`);
  const V = model.numClasses;
  let ids: number[];
  if (options.sampleIds) {
    ids = [...new Set(options.sampleIds)];
  } else {
    ids = (await dynamicsTraining(ctx.db, run.id))?.trackedIds ?? [];
  }
  const points = await runPathPoints(ctx.db, run.id);
  const P = points.length;
  if (ids.length * P > MAX_PATH_CELLS) {
    throw new BadUserInputError(`${ids.length} samples × ${P} checkpoints is more than ${MAX_PATH_CELLS} (checkpoint, sample) cells; ask for fewer samples`, 'sampleIds');
  }
  // Every id is a sample of the run's dataset, before anything is computed.
  const samples = await ctx.loaders.sampleById.loadMany(ids);
  const labels = ids.map((id, i) => {
    const s = samples[i];
    if (!s || s instanceof Error || s.datasetId !== run.datasetId) throw new BadUserInputError(`Sample ${id} is not a sample of run ${run.id}'s dataset`, 'sampleIds');
    return s.label;
  });

  const checkpointIds = points.map((p) => p.id);
  const position = new Map(ids.map((id, s) => [id, s]));
  const pointOf = new Map(checkpointIds.map((id, p) => [id, p]));
  const probs: number[] = new Array<number>(ids.length * P * V).fill(0);
  const fill = async (): Promise<Uint8Array> => {
    const have = new Uint8Array(ids.length * P);
    for (const v of await pathValues(ctx.db, checkpointIds, ids)) {
      const s = position.get(v.sampleId)!;
      const p = pointOf.get(v.checkpointId)!;
      if (writePi(probs, (s * P + p) * V, V, v.probs, v.logits)) have[s * P + p] = 1;
    }
    return have;
  };
  let have = await fill();
  let computed = 0;
  const missing = new Map<number, number[]>();
  for (let p = 0; p < P; p++) {
    for (let s = 0; s < ids.length; s++) {
      if (have[s * P + p]) continue;
      const list = missing.get(checkpointIds[p]!) ?? [];
      list.push(ids[s]!);
      missing.set(checkpointIds[p]!, list);
    }
  }
  if (missing.size > 0) {
    // sampleTerms' own loader batches the inline fills of one tick into one compute call per
    // checkpoint; what does not fit the request's inline allowance becomes a job per checkpoint.
    const jobIds: string[] = [];
    let pending = 0;
    const page = ctx.config.maxPageSize;
    const calls: { checkpointId: number; sampleIds: number[] }[] = [];
    for (const [checkpointId, list] of missing) {
      for (let i = 0; i < list.length; i += page) calls.push({ checkpointId, sampleIds: list.slice(i, i + page) });
    }
    const errors: unknown[] = [];
    await Promise.all(
      calls.map(async ({ checkpointId, sampleIds }) => {
        try {
          await sampleTerms(ctx, checkpointId, sampleIds, ['PROBS'], { waitMs: waitMs ?? null });
          computed += sampleIds.length;
        } catch (error) {
          const jobId = error instanceof TermsPendingError ? error.extensions.jobId : undefined;
          if (typeof jobId !== 'string') {
            errors.push(error); // a caller who may not compute, a budget, a model that cannot run
            return;
          }
          jobIds.push(jobId);
          pending += sampleIds.length;
        }
      }),
    );
    if (errors.length > 0) throw errors[0];
    if (jobIds.length > 0) {
      throw new TermsPendingError(
        jobIds[0]!,
        `${pending} (checkpoint, sample) pairs of run ${run.id} lack π; ${jobIds.length} job${jobIds.length === 1 ? ' is' : 's are'} computing them (${jobIds.slice(0, 5).join(', ')}${jobIds.length > 5 ? ', …' : ''}); ask again when they finish`,
        { jobIds, runId: String(run.id), pending },
      );
    }
    have = await fill();
    invariant(
      have.every((h) => h === 1),
      `run ${run.id} still lacks π after computing it`,
    );
  }
  return {
    checkpointIds,
    steps: points.map((p) => p.step),
    epochs: points.map((p) => p.epoch),
    sampleIds: ids,
    labels,
    classes: V,
    probs,
    probsBase64: float32ToBytes(Float32Array.from(probs)),
    computed,
  };
}
