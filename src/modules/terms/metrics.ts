import type { Context } from '../context.js';
import { MAX_METRIC_ROWS_PER_REQUEST, type CheckpointShape, type MetricValues } from './metrics-storage.js';
import { CLIENT_PRODUCER } from './producers.js';
import { writeMetrics, type Producer } from './write-terms.js';
import { BadUserInputError, NotFoundError, invariant } from '../../platform/errors.js';

// What other modules write values with: the writers (src/modules/terms/write-terms.ts) and their types.
export { columnField } from './metrics-storage.js';
export type { CheckpointShape, FieldNamer, MetricColumns, MetricValues } from './metrics-storage.js';
export type { CrossValue } from './cross-storage.js';
export { writeCrossMetrics, writeCrossMetricsIn, writeMetricColumns, writeMetricColumnsIn, writeMetrics, type Producer } from './write-terms.js';

/**
 * The producer of client-recorded values. Where the process runs a compute runtime (a server always
 * does), its id is read once per process and kept there; elsewhere the writer reads it by its key.
 */
export function clientProducer(ctx: Context): Producer {
  const runtime = ctx.runtimeIfStarted;
  return runtime ? () => runtime.compute.producerRef(CLIENT_PRODUCER) : CLIENT_PRODUCER;
}

/** What a metrics write needs to know about its checkpoint: the dataset and the class count. */
export async function checkpointShape(ctx: Context, checkpointId: number): Promise<CheckpointShape> {
  const checkpoint = await ctx.loaders.checkpointById.load(checkpointId);
  if (!checkpoint) throw new NotFoundError('Checkpoint', checkpointId);
  const run = await ctx.loaders.runById.load(checkpoint.runId);
  invariant(run, `checkpoint ${checkpointId} has no run`);
  const model = await ctx.loaders.modelById.load(run.modelId);
  invariant(model, `run ${run.id} has no model`);
  return { id: checkpointId, datasetId: run.datasetId, numClasses: model.numClasses };
}

/** Records client values at a checkpoint: the whole batch or nothing. */
export async function recordMetrics(ctx: Context, checkpointId: number, rows: readonly MetricValues[]): Promise<number> {
  if (rows.length > MAX_METRIC_ROWS_PER_REQUEST) {
    throw new BadUserInputError(`At most ${MAX_METRIC_ROWS_PER_REQUEST} rows per request`, 'metrics');
  }
  const shape = await checkpointShape(ctx, checkpointId);
  return writeMetrics(ctx.db, shape, rows, clientProducer(ctx));
}
