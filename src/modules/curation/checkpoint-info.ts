import type { Context } from '../context.js';
import type { TargetSet } from './term-columns.js';
import { targetKey } from './term-columns.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';

/**
 * What curation services need: the database, config and logger, per-request loaders (the CLI makes
 * its own), and who is asking (whether a missing term may be computed for them).
 */
export type CurationContext = Pick<Context, 'db' | 'config' | 'log' | 'loaders' | 'caller'>;

/** A checkpoint with what curation queries need of its run and dataset. */
export interface CheckpointInfo {
  id: number;
  runId: number;
  step: number;
  learningRate: number | null;
  datasetId: number;
  classNames: string[];
}

const infoCache = new WeakMap<object, Map<number, Promise<CheckpointInfo | null>>>();

/**
 * The checkpoint with its run's dataset, in one statement (not three loader round trips: this is on
 * the hot path of every curation query), remembered for the rest of the request.
 */
export async function checkpointInfo(ctx: CurationContext, checkpointId: number): Promise<CheckpointInfo> {
  let perRequest = infoCache.get(ctx.loaders);
  if (!perRequest) infoCache.set(ctx.loaders, (perRequest = new Map()));
  let info = perRequest.get(checkpointId);
  if (!info) {
    info = (async () => {
      // named: curation.checkpointInfo
      const [row] = await ctx.db.sql.query<{ id: number; run_id: number; step: number; learning_rate: number | null; dataset_id: number; class_names: string[] }>(
        `SELECT c.id, c.run_id, c.step, c.learning_rate, r.dataset_id, d.class_names
         FROM checkpoint c JOIN run r ON r.id = c.run_id JOIN dataset d ON d.id = r.dataset_id WHERE c.id = $1`,
        [checkpointId],
      );
      if (!row) return null;
      return {
        id: Number(row.id),
        runId: Number(row.run_id),
        step: Number(row.step),
        learningRate: row.learning_rate === null ? null : Number(row.learning_rate),
        datasetId: Number(row.dataset_id),
        classNames: row.class_names,
      };
    })();
    perRequest.set(checkpointId, info);
  }
  const found = await info;
  if (!found) throw new NotFoundError('Checkpoint', checkpointId);
  return found;
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
