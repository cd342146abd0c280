import type { Context } from '../context.js';
import { afterNumber, pageSize, toConnection, type PageArgs } from '../../platform/graphql/pagination.js';
import type { ConnectionRow, SampleMetricRow } from '../../platform/graphql/rows.js';
import { countSampleMetrics, sampleMetricPage } from './metrics-list-storage.js';

/** A checkpoint's stored metrics in sample-id order (Checkpoint.metrics), a keyset page. */
export async function listMetrics(ctx: Context, checkpointId: number, args: PageArgs): Promise<ConnectionRow<SampleMetricRow>> {
  const list = `metrics:${checkpointId}`;
  const limit = pageSize(args.first, ctx.config.maxPageSize);
  const after = afterNumber(list, args.after);
  const rows = limit === 0 ? [] : await sampleMetricPage(ctx.db, checkpointId, after, limit + 1);
  return toConnection(list, rows, limit, (row) => [row.sampleId], () => countSampleMetrics(ctx.db, checkpointId));
}
