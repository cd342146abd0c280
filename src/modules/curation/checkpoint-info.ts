import type { Context } from '../context.js';
import type { TargetSet } from './term-columns.js';
import { targetKey } from './term-columns.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { checkpointContext, checkpointContexts } from '../checkpoints/service.js';
import type { CheckpointInfo } from './ranking-storage.js';
import { selectionDatasetId } from './selections-storage.js';

/**
 * What curation services need: the database, config and logger, per-request loaders (the CLI makes
 * its own), and who is asking (whether a missing term may be computed for them).
 */
export type CurationContext = Pick<Context, 'db' | 'config' | 'log' | 'loaders' | 'caller'>;

export type { CheckpointInfo };

/**
 * The checkpoint with its run's dataset: the checkpoints module's `checkpointContext`, one statement
 * (not loader round trips for checkpoint, run and dataset: this is on the hot path of every curation
 * query) remembered for the rest of the request; the checkpoint row it read also serves `checkpointById`.
 */
export function checkpointInfo(ctx: CurationContext, checkpointId: number): Promise<CheckpointInfo> {
  return checkpointContext(ctx, checkpointId);
}

/** Several checkpoints at once (one statement for those not read yet), in the order given; the first missing one is refused. */
export function checkpointInfos(ctx: CurationContext, checkpointIds: readonly number[]): Promise<CheckpointInfo[]> {
  return checkpointContexts(ctx, checkpointIds);
}

/**
 * The target_key of a target set, after checking that it can be one for this dataset: a selection
 * must exist and be of the same dataset. A split is taken as named (kCross against a split that has
 * no samples simply has no values).
 */
export async function resolveTarget(ctx: CurationContext, datasetId: number, target: TargetSet | null | undefined, field = 'target'): Promise<string | null> {
  if (!target) return null;
  if (target.kind === 'selection') {
    const selectionDataset = await selectionDatasetId(ctx.db.sql, target.selectionId);
    if (selectionDataset === null) throw new NotFoundError('Selection', target.selectionId);
    if (selectionDataset !== datasetId) {
      throw new BadUserInputError(`Selection ${target.selectionId} is of another dataset than the checkpoint's run`, `${field}.selectionId`);
    }
  }
  return targetKey(target);
}

export function classNameOf(classNames: readonly string[], label: number): string {
  return classNames[label] ?? String(label);
}
