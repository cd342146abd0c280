import type { Sql } from '../../platform/db/sql.js';
import { TERMS } from '../../platform/values/term.js';
import { BadUserInputError } from '../../platform/errors.js';
import { trainPlan } from './train-plan.js';
import type { TrainSpec } from './service.js';

/**
 * The dynamics summary of a run (`Run.dynamicsSummary`), computed from its stored rows with one SQL
 * statement when asked. It summarises the run's own analysis, never what later queries computed:
 * rows that rankedSamples, termStats or a computeTerms job add to the run's checkpoints (test
 * samples, samples the training did not use, terms nobody recorded) leave it as it was.
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

/** π of a sample_metric row `m` in float64: the stored probs, else the softmax of the stored logits. */
const PI = `CASE
  WHEN m.probs IS NOT NULL THEN m.probs::float8[]
  WHEN m.logits IS NOT NULL THEN (
    SELECT array_agg(q.e / q.s ORDER BY q.i) FROM (
      SELECT q0.i, q0.e, sum(q0.e) OVER () AS s FROM (
        SELECT u.i, exp(u.z - max(u.z) OVER ()) AS e FROM unnest(m.logits::float8[]) WITH ORDINALITY AS u(z, i)
      ) q0
    ) q)
END`;

/** The producers a client records as: a value with one of these sources was recorded, not computed. */
const CLIENT_SOURCES = `ARRAY(SELECT id FROM producer WHERE kind = 'CLIENT')::smallint[]`;

/**
 * The run's rows in scope as `m` (checkpoint_id, step, sample_id and the values the summary reads).
 * Parameters: $1 the run; for a trained run $4 its analysis steps, $5 its tracking steps, $6 the
 * trained samples, $7 the tracked ones.
 */
function scopeSql(trained: boolean): string {
  const read = ['h_min_eig', 'probs', 'logits', 'loss', 'correct'];
  if (trained) {
    return `SELECT c.id AS checkpoint_id, c.step, e.sample_id, ${read.map((col) => `e.${col}`).join(', ')}
       FROM checkpoint c JOIN sample_metric e ON e.checkpoint_id = c.id
       WHERE c.run_id = $1
         AND ((c.step = ANY($4::int[]) AND e.sample_id = ANY($6::int[])) OR (c.step = ANY($5::int[]) AND e.sample_id = ANY($7::int[])))`;
  }
  // Each value only where the client recorded it; a row counts where it recorded any value.
  return `SELECT c.id AS checkpoint_id, c.step, e.sample_id,
              ${read.map((col) => `CASE WHEN e.${col}_src = ANY(cs.ids) THEN e.${col} END AS ${col}`).join(',\n              ')}
       FROM checkpoint c JOIN sample_metric e ON e.checkpoint_id = c.id CROSS JOIN (SELECT ${CLIENT_SOURCES} AS ids) cs
       WHERE c.run_id = $1 AND (${TERMS.map((t) => `e.${t.column}_src = ANY(cs.ids)`).join(' OR ')})`;
}

/** The summary of run `runId` (zeros and nulls for a run without rows in scope). */
export async function dynamicsSummary(sql: Sql, runId: number, options: DynamicsSummaryOptions = {}): Promise<DynamicsSummaryRow> {
  const split = options.split ?? 'train';
  const hTolerance = options.hTolerance ?? DEFAULT_H_TOLERANCE;
  if (!Number.isFinite(hTolerance) || hTolerance < 0) throw new BadUserInputError('hTolerance must be a finite number ≥ 0', 'hTolerance');
  // named: dynamics.training
  const [job] = await sql.query<{ spec: TrainSpec; sample_ids: number[]; tracked_ids: number[] }>(
    'SELECT spec, sample_ids, tracked_ids FROM train_job WHERE run_id = $1',
    [runId],
  );
  const values: unknown[] = [runId, split, hTolerance];
  if (job) {
    // The training's plan says which checkpoint holds which rows (the same plan trainRun stored).
    const plan = trainPlan({ samples: job.sample_ids.length, epochs: job.spec.epochs, batchSize: job.spec.batchSize, analyzeEvery: job.spec.analyzeEvery, trackEverySteps: job.spec.trackEverySteps });
    const steps = (kind: 'analysis' | 'track') => plan.points.filter((p) => p.kind === kind).map((p) => p.step);
    values.push(steps('analysis'), steps('track'), job.sample_ids.map(Number), job.tracked_ids.map(Number));
  }
  // named: dynamics.summary (the scope is one of scopeSql's two literals)
  const [row] = await sql.query<{
    analysis_points: number;
    samples_analysed: number;
    h_pairs: number;
    h_psd: number;
    final_checkpoint_id: number | null;
    final_samples: number;
    accuracy: number | null;
    loss: number | null;
    tracked: number;
    path_sum: number;
  }>(
    `WITH m AS MATERIALIZED (
       ${scopeSql(job !== undefined)}
     ),
     points AS (
       SELECT p.checkpoint_id AS id, row_number() OVER (ORDER BY p.step) AS k
       FROM (SELECT DISTINCT checkpoint_id, step FROM m) p
     ),
     last_point AS (SELECT id FROM points ORDER BY k DESC LIMIT 1),
     obs AS (
       SELECT p.k, m.sample_id, m.h_min_eig, ${PI} AS pi
       FROM points p JOIN m ON m.checkpoint_id = p.id
     ),
     tracked AS (
       SELECT sample_id FROM obs WHERE pi IS NOT NULL GROUP BY sample_id HAVING count(*) = (SELECT count(*) FROM points)
     ),
     moves AS (
       SELECT sqrt(sum((u.cur - u.prev) ^ 2)) AS d
       FROM obs a
       JOIN tracked t ON t.sample_id = a.sample_id
       JOIN obs b ON b.sample_id = a.sample_id AND b.k = a.k + 1
       CROSS JOIN LATERAL unnest(b.pi, a.pi) AS u(cur, prev)
       GROUP BY a.sample_id, a.k
     ),
     final AS (
       SELECT count(*)::int AS n, avg(m.correct::int)::float8 AS accuracy, avg(m.loss::float8) AS loss
       FROM m JOIN sample s ON s.id = m.sample_id
       WHERE m.checkpoint_id = (SELECT id FROM last_point) AND s.split = $2
     )
     SELECT (SELECT count(*)::int FROM points) AS analysis_points,
            (SELECT count(DISTINCT sample_id)::int FROM obs) AS samples_analysed,
            (SELECT count(h_min_eig)::int FROM obs) AS h_pairs,
            (SELECT count(*)::int FROM obs WHERE h_min_eig >= -$3::float8) AS h_psd,
            (SELECT id FROM last_point) AS final_checkpoint_id,
            f.n AS final_samples, f.accuracy, f.loss,
            (SELECT count(*)::int FROM tracked) AS tracked,
            (SELECT coalesce(sum(d), 0)::float8 FROM moves) AS path_sum
     FROM final f`,
    values,
  );
  const r = row!;
  const hPairs = Number(r.h_pairs);
  const tracked = Number(r.tracked);
  const num = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    analysisPoints: Number(r.analysis_points),
    samplesAnalysed: Number(r.samples_analysed),
    hPsdPairs: hPairs,
    hPsdRatio: hPairs === 0 ? null : Number(r.h_psd) / hPairs,
    hTolerance,
    finalCheckpointId: num(r.final_checkpoint_id),
    finalTrainingSamples: Number(r.final_samples),
    finalTrainingAccuracy: num(r.accuracy),
    finalTrainingLoss: num(r.loss),
    probabilityPathsTracked: tracked,
    pathLength: tracked === 0 ? null : Number(r.path_sum) / tracked,
  };
}
