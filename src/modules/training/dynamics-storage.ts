import type { Database } from '../../platform/db/database.js';
import { TERMS } from '../../platform/values/term.js';
import type { TrainSpec } from './storage.js';

/**
 * The statements behind `Run.dynamicsSummary` (src/modules/training/dynamics-summary.ts says what
 * they compute and over which rows).
 */

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

/** A trained run's training, as the summary's scope needs it. */
export interface DynamicsTraining {
  spec: TrainSpec;
  sampleIds: number[];
  trackedIds: number[];
}

/** The training of run `runId`; null for a run that a client logs. */
export async function dynamicsTraining(db: Database, runId: number): Promise<DynamicsTraining | null> {
  // named: dynamics.training
  const [job] = await db.sql.query<{ spec: TrainSpec; sample_ids: number[]; tracked_ids: number[] }>(
    'SELECT spec, sample_ids, tracked_ids FROM train_job WHERE run_id = $1',
    [runId],
  );
  return job ? { spec: job.spec, sampleIds: job.sample_ids.map(Number), trackedIds: job.tracked_ids.map(Number) } : null;
}

/** Which rows of a trained run are its own: the plan's analysis and tracking steps, and the samples of each. */
export interface TrainedScope {
  analysisSteps: number[];
  trackSteps: number[];
  sampleIds: number[];
  trackedIds: number[];
}

/** The counts and sums the summary is made of. */
export interface DynamicsCounts {
  analysisPoints: number;
  samplesAnalysed: number;
  hPairs: number;
  hPsd: number;
  finalCheckpointId: number | null;
  finalSamples: number;
  accuracy: number | null;
  loss: number | null;
  tracked: number;
  pathSum: number;
}

/**
 * The summary's counts over run `runId`'s rows in scope: a trained run's (`trained`), else what a
 * client recorded. `split` is the training split; H counts as PSD when hMinEig ≥ −hTolerance.
 */
export async function dynamicsCounts(db: Database, runId: number, split: string, hTolerance: number, trained: TrainedScope | null): Promise<DynamicsCounts> {
  const values: unknown[] = [runId, split, hTolerance];
  if (trained) values.push(trained.analysisSteps, trained.trackSteps, trained.sampleIds, trained.trackedIds);
  // named: dynamics.summary (the scope is one of scopeSql's two literals)
  const [row] = await db.sql.query<{
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
       ${scopeSql(trained !== null)}
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
  const num = (v: number | string | null) => (v === null ? null : Number(v));
  return {
    analysisPoints: Number(r.analysis_points),
    samplesAnalysed: Number(r.samples_analysed),
    hPairs: Number(r.h_pairs),
    hPsd: Number(r.h_psd),
    finalCheckpointId: num(r.final_checkpoint_id),
    finalSamples: Number(r.final_samples),
    accuracy: num(r.accuracy),
    loss: num(r.loss),
    tracked: Number(r.tracked),
    pathSum: Number(r.path_sum),
  };
}
