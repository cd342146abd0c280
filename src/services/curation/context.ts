import type { Context } from '../../context.js';
import type { TargetSet } from '../../db/curation-terms.js';
import { targetKey } from '../../db/curation-terms.js';
import { BadUserInputError, NotFoundError, invariant } from '../../errors.js';

/** What curation services need: the database, config and logger, and per-request loaders (the CLI makes its own). */
export type CurationContext = Pick<Context, 'db' | 'config' | 'log' | 'loaders'>;

/** A checkpoint with what curation queries need of its run and dataset. */
export interface CheckpointInfo {
  id: number;
  runId: number;
  step: number;
  learningRate: number | null;
  datasetId: number;
  classNames: string[];
}

export async function checkpointInfo(ctx: CurationContext, checkpointId: number): Promise<CheckpointInfo> {
  const checkpoint = await ctx.loaders.checkpointById.load(checkpointId);
  if (!checkpoint) throw new NotFoundError('Checkpoint', checkpointId);
  const run = await ctx.loaders.runById.load(checkpoint.runId);
  invariant(run, `checkpoint ${checkpointId} has no run`);
  const dataset = await ctx.loaders.datasetById.load(run.datasetId);
  invariant(dataset, `run ${run.id} has no dataset`);
  return {
    id: checkpoint.id,
    runId: run.id,
    step: checkpoint.step,
    learningRate: checkpoint.learningRate,
    datasetId: dataset.id,
    classNames: dataset.classNames,
  };
}

/**
 * The target_key of a target set, after checking that it can be one for this dataset: a selection
 * must exist and be of the same dataset. A split is taken as named (kCross against a split that has
 * no samples simply has no values).
 */
export async function resolveTarget(ctx: CurationContext, datasetId: number, target: TargetSet | null | undefined, field = 'target'): Promise<string | null> {
  if (!target) return null;
  if (target.kind === 'selection') {
    // named: selection.datasetOf
    const [row] = await ctx.db.sql.query<{ dataset_id: number }>('SELECT dataset_id FROM selection WHERE id = $1', [target.selectionId]);
    if (!row) throw new NotFoundError('Selection', target.selectionId);
    if (Number(row.dataset_id) !== datasetId) {
      throw new BadUserInputError(`Selection ${target.selectionId} is of another dataset than the checkpoint's run`, `${field}.selectionId`);
    }
  }
  return targetKey(target);
}

export function classNameOf(classNames: readonly string[], label: number): string {
  return classNames[label] ?? String(label);
}
